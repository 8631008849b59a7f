"""Whether an undo plan still has anything to do on a connector."""

from __future__ import annotations

from remediate.core.exchange import PROPERTY_NAMES, SendConnector
from remediate.core.plan import Plan


def already_restored(undo: Plan, current: SendConnector) -> bool:
    """Every setting the undo would send is already the connector's value."""
    attributes = {prop: attr for attr, prop in PROPERTY_NAMES.items()}
    for step in undo.changes:
        for p in step.parameters:
            attr = attributes.get(p.name)
            if attr is not None and attr != "name" and getattr(current, attr) != p.value:
                return False
    return True
