"""Requests and responses as the log stores them by default: shapes, never raw text.

A string is kept only under a key that names a parameter (project, type, status, uri, ...);
any other string — memory content, a query, a note, a state value — becomes its length.
Collections become their count and the ids of their items; objects become their fields,
normalised the same way. The rule is an allowlist, so a new field is safe by default.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from enum import Enum
from pathlib import PurePath
from typing import Any
from uuid import UUID

# Keys whose string values are parameters, not content: kept (clipped) as they are.
KEPT_KEYS = frozenset(
    {
        "action",
        "actor",
        "by",
        "category",
        "client",
        "document",
        "engine",
        "key",
        "kind",
        "mode",
        "name",
        "path",
        "paths",
        "project",
        "reason_code",
        "source_kind",
        "status",
        "transport",
        "type",
        "types",
        "uri",
    }
)
MAX_KEPT_CHARS = 200
MAX_KEPT_ITEMS = 50
MAX_IDS = 50
MAX_DEPTH = 6
MAX_KEYS = 64

_PASSTHROUGH = (bool, int, float, type(None), datetime, date, time, timedelta, UUID, Decimal)
_EXACT_PASSTHROUGH = frozenset(_PASSTHROUGH)


def normalise(value: Any, key: str | None = None, depth: int = 0) -> Any:
    """The shape of ``value``: what an operator needs to see, without the text it carried."""
    kind = type(value)  # the common exact types first: this runs for every logged operation
    if kind in _EXACT_PASSTHROUGH:
        return value
    if kind is str:
        return value[:MAX_KEPT_CHARS] if key in KEPT_KEYS else {"chars": len(value)}
    if kind is dict and depth < MAX_DEPTH:
        return _mapping(value.items(), depth)
    if isinstance(value, Enum):
        value = value.value
    if isinstance(value, _PASSTHROUGH):
        return value
    if isinstance(value, str | PurePath):
        text = str(value)
        if key in KEPT_KEYS:
            return text[:MAX_KEPT_CHARS]
        return {"chars": len(text)}
    if isinstance(value, bytes | bytearray | memoryview):
        return {"bytes": len(bytes(value))}
    if isinstance(value, BaseException):
        return {"exception": type(value).__name__}
    if depth >= MAX_DEPTH:
        return {"type": type(value).__name__}
    if isinstance(value, Mapping):
        return _mapping(value.items(), depth)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _mapping(
            ((f.name, getattr(value, f.name)) for f in dataclasses.fields(value)), depth
        )
    if isinstance(value, tuple) and hasattr(value, "_asdict"):
        return _mapping(value._asdict().items(), depth)
    if isinstance(value, list | tuple | set | frozenset):
        return _collection(value, key, depth)
    if callable(value):
        return {"callable": getattr(value, "__qualname__", type(value).__name__)}
    return {"type": type(value).__name__}


def _mapping(pairs: Any, depth: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for index, (name, item) in enumerate(pairs):
        if index >= MAX_KEYS:
            out["$omitted_keys"] = True
            break
        name = name if isinstance(name, str) else str(name)
        out[name[:MAX_KEPT_CHARS]] = normalise(item, name, depth + 1)
    return out


def _collection(
    value: list[Any] | tuple[Any, ...] | set[Any] | frozenset[Any], key: str | None, depth: int
) -> Any:
    items = value if isinstance(value, list) else list(value)
    small = len(items) <= MAX_KEPT_ITEMS
    if small and key in KEPT_KEYS and all(isinstance(item, str | PurePath | int) for item in items):
        return [normalise(item, key, depth + 1) for item in items]
    if small and items and all(type(item) is int for item in items):
        return {"count": len(items), "ids": list(items)}
    shape: dict[str, Any] = {"count": len(items)}
    ids = [found for found in map(_id_of, items[:MAX_IDS]) if found is not None]
    if ids:
        shape["ids"] = ids
    return shape


def _id_of(item: Any) -> Any:
    if type(item) is dict or (not hasattr(item, "id") and isinstance(item, Mapping)):
        found = item.get("id")
    else:
        found = getattr(item, "id", None)
        if found is None:
            found = getattr(getattr(item, "memory", None), "id", None)
    if isinstance(found, str):
        return found[:MAX_KEPT_CHARS]
    return found if isinstance(found, int) and not isinstance(found, bool) else None
