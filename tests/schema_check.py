"""Checking --json output against the JSON Schemas the package ships (jsonschema)."""

from __future__ import annotations

import json
from typing import Any

import jsonschema

from remediate.ui.jsonout import schema


def checked(name: str, text: str) -> Any:
    """``text`` parsed as one JSON document and validated against schema ``name``."""
    data = json.loads(text)
    jsonschema.Draft202012Validator(schema(name)).validate(data)
    return data
