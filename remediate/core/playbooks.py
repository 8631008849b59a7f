"""Playbooks: YAML data in playbooks/, loaded and validated into frozen dataclasses.

A playbook names its event, the documented user actions (paraphrased), the inputs it takes
(each a ``FixOptions`` field with a fixed type), the reads it makes, the fixes it can propose
and the read-back steps, each pointing at a template in ps_templates/. A broken playbook is
reported as ``PlaybookError`` naming the file and the field.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from remediate.core.errors import PlaybookError, UsageError
from remediate.core.resources import playbooks_dir, templates_dir

# Input name (a FixOptions field) -> its type. A playbook may only declare these.
INPUT_TYPES: dict[str, str] = {
    "mechanism": "mechanism",
    "username": "username",
    "reenter_credential": "flag",
    "smart_hosts": "hosts",
    "port": "port",
    "require_tls": "bool",
    "tls_auth_level": "tls_auth_level",
    "tls_domain": "domain",
    "enable": "flag",
    "protocol_logging": "protocol_logging",
}

READ_TEMPLATES = frozenset({"get_send_connector", "get_queue", "retry_queue"})
FIX_TEMPLATES = frozenset(
    {
        "set_send_connector_routing",
        "set_send_connector_auth",
        "set_send_connector_tls",
        "set_send_connector_state",
    }
)
TEMPLATE_SUFFIX = ".ps1.j2"


@dataclass(frozen=True)
class EventInfo:
    id: int
    source: str
    symbolic_name: str | None
    severity: str
    message: str
    fields: tuple[tuple[str, str], ...]
    category: str | None = None


@dataclass(frozen=True)
class Action:
    """One documented user action, in the project's own words."""

    id: str
    text: str


@dataclass(frozen=True)
class Input:
    name: str
    type: str
    help: str


@dataclass(frozen=True)
class StepSpec:
    """A read, fix or read-back: which template, which documented action, and why."""

    template: str
    action: str
    reason: str
    id: str = ""


@dataclass(frozen=True)
class Playbook:
    id: str
    title: str
    purpose: str
    event: EventInfo
    actions: tuple[Action, ...]
    inputs: tuple[Input, ...]
    reads: tuple[StepSpec, ...]
    fixes: tuple[StepSpec, ...]
    verify: tuple[StepSpec, ...]
    source: Path

    @property
    def input_names(self) -> frozenset[str]:
        return frozenset(i.name for i in self.inputs)

    def action(self, action_id: str) -> Action:
        for a in self.actions:
            if a.id == action_id:
                return a
        raise KeyError(action_id)


def load_all(directory: Path | None = None) -> tuple[Playbook, ...]:
    """Every playbook in ``directory`` (default: the installed playbooks), sorted by event."""
    directory = directory or playbooks_dir()
    books = [_load_cached(path) for path in sorted(directory.glob("*.yaml"))]
    seen: dict[str, Path] = {}
    for book in books:
        for key in (book.id, str(book.event.id)):
            if key in seen:
                raise PlaybookError(
                    f"{book.source.name}: id: {key!r} is also used by {seen[key].name}"
                )
            seen[key] = book.source
    return tuple(sorted(books, key=lambda b: b.event.id))


# (path, mtime, size) -> parsed playbook: plans, scripts and backups look playbooks up often
# (a bulk run once per connector); a changed file is parsed again.
_LOADED: dict[tuple[Path, int, int], Playbook] = {}


def _load_cached(path: Path) -> Playbook:
    try:
        stat = path.stat()
    except OSError:
        return load_file(path)  # which says why it cannot be read
    key = (path.resolve(), stat.st_mtime_ns, stat.st_size)
    if key not in _LOADED:
        _LOADED[key] = load_file(path)
    return _LOADED[key]


def find(name: str, directory: Path | None = None) -> Playbook:
    """A playbook by its id or its event number (``2016``)."""
    books = load_all(directory)
    for book in books:
        if name.strip().lower() in (book.id.lower(), str(book.event.id)):
            return book
    known = ", ".join(f"{b.event.id} ({b.id})" for b in books)
    raise UsageError(
        f"no playbook named {name!r}; known playbooks: {known}",
        hint="run 'remediate playbooks' to list them",
    )


def load_file(path: Path) -> Playbook:
    try:
        # libyaml's CSafeLoader when built in (about 20x faster than the pure-Python one)
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=loader)  # noqa: S506 - safe
    except (OSError, UnicodeDecodeError) as exc:
        raise PlaybookError(f"{path.name}: cannot be read ({exc})") from exc
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" (line {where.line + 1})" if where else ""
        raise PlaybookError(f"{path.name}: is not valid YAML{line}") from exc
    return _Reader(path).playbook(data)


class _Reader:
    """Validates one file's data; every error names the file and the field path."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.templates = {
            p.name.removesuffix(TEMPLATE_SUFFIX)
            for p in templates_dir().glob("*" + TEMPLATE_SUFFIX)
        }

    def fail(self, field: str, problem: str) -> PlaybookError:
        return PlaybookError(f"{self.path.name}: {field}: {problem}")

    def mapping(self, data: Any, field: str) -> dict[str, Any]:
        if not isinstance(data, dict):
            raise self.fail(field, "must be a mapping")
        return data

    def text(self, data: dict[str, Any], key: str, field: str, *, optional: bool = False) -> Any:
        value = data.get(key)
        if value is None and optional:
            return None
        if not isinstance(value, str) or not value.strip():
            raise self.fail(f"{field}.{key}" if field else key, "must be a non-empty string")
        return value.strip()

    def items(self, data: dict[str, Any], key: str) -> list[Any]:
        value = data.get(key)
        if not isinstance(value, list) or not value:
            raise self.fail(key, "must be a non-empty list")
        return value

    def playbook(self, data: Any) -> Playbook:
        data = self.mapping(data, "(top level)")
        pb_id = self.text(data, "id", "")
        actions = tuple(
            self.action(a, f"actions[{i}]") for i, a in enumerate(self.items(data, "actions"))
        )
        action_ids = [a.id for a in actions]
        if len(set(action_ids)) != len(action_ids):
            raise self.fail("actions", "action ids must be unique")
        inputs = tuple(
            self.input(x, f"inputs[{i}]") for i, x in enumerate(self.items(data, "inputs"))
        )
        reads = self.specs(data, "reads", READ_TEMPLATES, action_ids)
        fixes = self.specs(data, "fixes", FIX_TEMPLATES, action_ids)
        fix_templates = [f.template for f in fixes]
        if len(set(fix_templates)) != len(fix_templates):
            raise self.fail("fixes", "each template may be used by one fix only")
        return Playbook(
            id=pb_id,
            title=self.text(data, "title", ""),
            purpose=self.text(data, "purpose", ""),
            event=self.event(data.get("event")),
            actions=actions,
            inputs=inputs,
            reads=reads,
            fixes=fixes,
            verify=self.specs(data, "verify", READ_TEMPLATES, action_ids),
            source=self.path,
        )

    def event(self, data: Any) -> EventInfo:
        data = self.mapping(data, "event")
        event_id = data.get("id")
        if not isinstance(event_id, int) or isinstance(event_id, bool) or event_id <= 0:
            raise self.fail("event.id", "must be a positive event number")
        fields = self.mapping(data.get("fields"), "event.fields")
        for key, value in fields.items():
            if not isinstance(value, str):
                raise self.fail(f"event.fields.{key}", "must be a string")
        return EventInfo(
            id=event_id,
            source=self.text(data, "source", "event"),
            symbolic_name=self.text(data, "symbolic_name", "event", optional=True),
            severity=self.text(data, "severity", "event"),
            message=self.text(data, "message", "event"),
            fields=tuple((str(k), v) for k, v in fields.items()),
            category=self.text(data, "category", "event", optional=True),
        )

    def action(self, data: Any, field: str) -> Action:
        data = self.mapping(data, field)
        return Action(
            id=self.text(data, "id", field), text=" ".join(self.text(data, "text", field).split())
        )

    def input(self, data: Any, field: str) -> Input:
        data = self.mapping(data, field)
        name = self.text(data, "name", field)
        if name not in INPUT_TYPES:
            raise self.fail(
                f"{field}.name", f"unknown input {name!r}; known: " + ", ".join(sorted(INPUT_TYPES))
            )
        kind = self.text(data, "type", field)
        if kind != INPUT_TYPES[name]:
            raise self.fail(
                f"{field}.type", f"input {name!r} has type {INPUT_TYPES[name]!r}, not {kind!r}"
            )
        return Input(name=name, type=kind, help=self.text(data, "help", field))

    def specs(
        self, data: dict[str, Any], key: str, allowed: frozenset[str], action_ids: list[str]
    ) -> tuple[StepSpec, ...]:
        out = []
        for i, item in enumerate(self.items(data, key)):
            field = f"{key}[{i}]"
            item = self.mapping(item, field)
            template = self.text(item, "template", field)
            if template not in allowed:
                raise self.fail(
                    f"{field}.template",
                    f"{template!r} cannot be used here; use " + " or ".join(sorted(allowed)),
                )
            if template not in self.templates:
                raise self.fail(
                    f"{field}.template", f"ps_templates/{template}{TEMPLATE_SUFFIX} does not exist"
                )
            action = self.text(item, "action", field)
            if action not in action_ids:
                raise self.fail(
                    f"{field}.action", f"{action!r} is not one of the playbook's actions"
                )
            out.append(
                StepSpec(
                    template=template,
                    action=action,
                    reason=" ".join(self.text(item, "reason", field).split()),
                    id=item.get("id") or template,
                )
            )
        return tuple(out)
