"""Checking --json output against the JSON Schemas the package ships (jsonschema)."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

import jsonschema
from referencing import Registry, Resource

from remediate.ui.jsonout import SCHEMAS, schema


@cache
def registry() -> Registry:
    """Every shipped schema under its ``$id``, so a ``$ref`` to another one (``show`` ->
    ``queue.schema.json``) resolves offline, as any validator given the directory would."""
    resources = []
    for path in sorted(SCHEMAS.glob("*.schema.json")):
        contents = json.loads(path.read_text(encoding="utf-8"))
        resources.append((contents["$id"], Resource.from_contents(contents)))
    return Registry().with_resources(resources)


def checked(name: str, text: str) -> Any:
    """``text`` parsed as one JSON document and validated against schema ``name``."""
    data = json.loads(text)
    jsonschema.Draft202012Validator(schema(name), registry=registry()).validate(data)
    return data
