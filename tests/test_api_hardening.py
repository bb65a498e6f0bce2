"""API hardening found while attacking memory (issue 18): the OpenAPI schema states the
bounds the server enforces in JSON Schema's own words."""

from __future__ import annotations

from typing import Any

from memwarden.api import create_app

PYDANTIC_ONLY = {"ge", "le", "gt", "lt", "min_length", "max_length", "multiple_of"}


def _keys(node: Any, path: str = "") -> list[str]:
    found: list[str] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key in PYDANTIC_ONLY and not path.endswith("/properties"):
                found.append(f"{path}/{key}")
            found += _keys(value, f"{path}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _keys(value, f"{path}/{index}")
    return found


def test_schema_uses_json_schema_bounds_only() -> None:
    schema = create_app().openapi()
    assert _keys(schema) == []
    by = schema["components"]["schemas"]["SupersedeBody"]["properties"]["by"]["anyOf"][0]
    assert by["minimum"] == 1 and by["maximum"] == 2**63 - 1
    recall = schema["components"]["schemas"]["RecallBody"]["properties"]
    assert set(recall["min_tier"]["anyOf"][0]["enum"]) == {
        "verified",
        "agent",
        "extracted",
        "flagged",
    }
    listing = {p["name"]: p for p in schema["paths"]["/memory"]["get"]["parameters"]}
    after = listing["after"]["schema"]["anyOf"][0]
    assert after["minimum"] == 1 and "ge" not in after
