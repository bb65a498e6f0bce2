"""JSON for any value, and rows kept under a size limit.

``to_jsonable`` never raises: values JSON cannot hold are turned into something it can
(datetimes and dates as ISO text, UUIDs, Decimals and paths as text, bytes as base64, sets as
sorted lists, exceptions as their type and message, dataclasses as their fields, anything else
as its ``repr``). Cycles, very deep nesting and huge containers are cut with ``$`` markers.
``encode_parts`` turns a row's JSON parts into text and truncates the largest until the row
fits in ``MAX_ROW_BYTES``, leaving a ``$truncated`` marker with the original size.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import math
from collections.abc import Mapping
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from enum import Enum
from pathlib import PurePath
from typing import Any
from uuid import UUID

MAX_ROW_BYTES = 16 * 1024
MAX_DEPTH = 24
MAX_ITEMS = 1000  # per container; the row limit cuts far earlier, this bounds the work
MAX_REPR_CHARS = 500
TRUNCATED = "$truncated"

_SCALARS = (str, int, bool, type(None))


def to_jsonable(value: Any) -> Any:
    """A structure of dicts, lists, strings, finite numbers, booleans and None."""
    return _convert(value, 0, set())


def _convert(value: Any, depth: int, path: set[int]) -> Any:
    try:
        return _convert_unsafe(value, depth, path)
    except Exception as exc:  # noqa: BLE001 - a value that cannot be read is stored as such
        return {"$unencodable": _type_name(value), "error": _type_name(exc)}


def _convert_unsafe(value: Any, depth: int, path: set[int]) -> Any:
    if isinstance(value, Enum):
        return _convert(value.value, depth, path)
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, str):
        return value if type(value) is str else str.__str__(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else repr(float(value))
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, UUID | Decimal | PurePath):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        data = bytes(value)
        return {"$bytes": base64.b64encode(data[:MAX_ROW_BYTES]).decode("ascii"), "len": len(data)}
    if isinstance(value, BaseException):
        return {"$exception": _type_name(value), "message": _safe_str(value)}
    if depth >= MAX_DEPTH:
        return {"$depth": _type_name(value)}
    marker = id(value)
    if marker in path:
        return {"$cycle": _type_name(value)}
    path.add(marker)
    try:
        return _container(value, depth + 1, path)
    finally:
        path.discard(marker)


def _container(value: Any, depth: int, path: set[int]) -> Any:
    if isinstance(value, Mapping):
        return _mapping(value.items(), len(value), depth, path)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = dataclasses.fields(value)
        pairs = ((f.name, getattr(value, f.name)) for f in fields)
        return _mapping(pairs, len(fields), depth, path)
    if isinstance(value, tuple) and hasattr(value, "_asdict"):  # a named tuple
        return _convert(value._asdict(), depth, path)
    if isinstance(value, list | tuple):
        items = [_convert(item, depth, path) for item in value[:MAX_ITEMS]]
        if len(value) > MAX_ITEMS:
            items.append({"$omitted": len(value) - MAX_ITEMS})
        return items
    if isinstance(value, set | frozenset):
        converted = [_convert(item, depth, path) for item in list(value)[:MAX_ITEMS]]
        converted.sort(key=_sort_key)
        if len(value) > MAX_ITEMS:
            converted.append({"$omitted": len(value) - MAX_ITEMS})
        return converted
    to_dict = getattr(value, "to_dict", None)
    if callable(to_dict) and not isinstance(value, type):
        return _convert(to_dict(), depth, path)
    return {"$repr": _safe_repr(value)}


def _mapping(pairs: Any, size: int, depth: int, path: set[int]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for index, (key, item) in enumerate(pairs):
        if index >= MAX_ITEMS:
            out["$omitted"] = size - MAX_ITEMS
            break
        out[_key(key, depth, path)] = _convert(item, depth, path)
    return out


def _key(key: Any, depth: int, path: set[int]) -> str:
    if isinstance(key, str):
        return str.__str__(key)
    converted = _convert(key, depth, path)
    return converted if isinstance(converted, str) else dumps(converted)


def _sort_key(item: Any) -> str:
    return dumps(item)


def _type_name(value: Any) -> str:
    kind = type(value)
    module = kind.__module__
    return kind.__qualname__ if module == "builtins" else f"{module}.{kind.__qualname__}"


def _safe_str(value: Any) -> str:
    try:
        text = str(value)
    except Exception:  # noqa: BLE001 - a broken __str__ must not stop the log
        return f"<unprintable {_type_name(value)}>"
    return text[:MAX_REPR_CHARS]


def _safe_repr(value: Any) -> str:
    try:
        text = repr(value)
    except Exception:  # noqa: BLE001 - a broken __repr__ must not stop the log
        return f"<unrepresentable {_type_name(value)}>"
    return text[:MAX_REPR_CHARS]


def dumps(value: Any) -> str:
    """Compact JSON text of an already JSON-able structure, safe to store as UTF-8."""
    return _sized(value)[0]


def _sized(value: Any, plain: bool = False) -> tuple[str, int]:
    """JSON text and its size in UTF-8 bytes. Lone surrogates cannot be stored as UTF-8:
    then every non-ASCII character is escaped instead."""
    text = _ENCODERS[plain, False].encode(value)
    try:
        return text, len(text.encode("utf-8"))
    except UnicodeEncodeError:
        text = _ENCODERS[plain, True].encode(value)
        return text, len(text)


def _plain_default(value: Any) -> Any:
    """The fast path's only conversions: the scalars a normalised structure may hold."""
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, UUID | Decimal):
        return str(value)
    raise TypeError("not plain")


# Built once: json.dumps with any argument builds a new encoder on every call.
_ENCODERS = {
    (plain, ascii_only): json.JSONEncoder(
        ensure_ascii=ascii_only,
        separators=(",", ":"),
        allow_nan=False,
        default=_plain_default if plain else None,
    )
    for plain in (False, True)
    for ascii_only in (False, True)
}


def encode_value(value: Any, *, plain: bool = False) -> tuple[str, int]:
    """JSON text of any value and its size in bytes.

    ``plain`` says the value is a normalised structure (dicts, lists, strings, numbers,
    datetimes, UUIDs, Decimals): the C encoder then does it in one pass, and anything it
    cannot take (a NaN, an odd key) sends the value down the general path instead."""
    if plain:
        try:
            return _sized(value, plain=True)
        except (TypeError, ValueError, RecursionError):
            pass
    return _sized(to_jsonable(value))


def encode_parts(
    parts: dict[str, Any], limit: int = MAX_ROW_BYTES, *, plain: bool = False
) -> dict[str, str | None]:
    """Each part as JSON text (None stays None), the largest truncated until they fit ``limit``."""
    texts: dict[str, str | None] = {}
    sizes: dict[str, int] = {}
    for name, value in parts.items():
        if value is None:
            texts[name] = None
            continue
        texts[name], sizes[name] = encode_value(value, plain=plain)
    total = sum(sizes.values())
    if total <= limit:
        return texts
    for name in sorted(sizes, key=sizes.__getitem__, reverse=True):
        excess = total - limit
        if excess <= 0:
            break
        full = texts[name]
        assert full is not None
        budget = max(0, sizes[name] - excess)
        marker = truncated(full, sizes[name], budget)
        texts[name] = marker
        new_size = len(marker.encode("utf-8"))
        total += new_size - sizes[name]
        sizes[name] = new_size
    return texts


def truncated(text: str, size: int, budget: int) -> str:
    """A ``$truncated`` marker holding as much of the start of ``text`` as fits ``budget`` bytes."""
    keep = max(0, budget - 64)
    while True:
        head = text.encode("utf-8")[:keep].decode("utf-8", "ignore")
        marker = dumps({TRUNCATED: True, "bytes": size, "head": head})
        encoded = len(marker.encode("utf-8"))
        if encoded <= budget or not head:
            return marker
        # Escaping grew the head: shrink it in proportion, and always by something.
        keep = min(keep - 1, keep * budget // encoded - 16)
        keep = max(0, keep)
