"""The OpenAPI document, with integer bounds as integers.

FastAPI's OpenAPI model holds ``minimum``/``maximum`` as floats: an integer field bounded by
2**63 - 1 would be published as 9.223372036854776e+18, a bound one above the one the server
enforces. Integer schemas get their bounds back as the exact integers pydantic gave.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI

from memwarden.api.models import MAX_ID

_BOUNDS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")


def _exact(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return MAX_ID if value == float(MAX_ID) else int(value)
    return value


def _fix(node: Any) -> None:
    if isinstance(node, dict):
        if node.get("type") == "integer":
            for bound in _BOUNDS:
                if bound in node:
                    node[bound] = _exact(node[bound])
        for value in node.values():
            _fix(value)
    elif isinstance(node, list):
        for value in node:
            _fix(value)


def install(app: FastAPI) -> None:
    generate: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = generate()
            _fix(schema)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
