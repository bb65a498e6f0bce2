"""Memory metadata: the caller's JSON object per memory, its validation, and the ``where``
filter over it.

Stored as canonical JSON text (sorted keys, no spaces, UTF-8 as is: the ledger's own form), so
the row MAC, the ledger snapshot and the integrity replay all see one encoding; an empty
object is stored as no metadata (NULL). An update replaces the whole object (``{}`` clears it).

A ``where`` condition ``key=value`` matches a memory whose metadata has the top-level ``key``
holding a scalar whose text is ``value``: a string by its value, a number by its JSON text
(``3``, ``2.5``), a boolean as ``true``/``false``, null as ``null``; an object or an array
never matches. Conditions are AND-ed. The comparison runs in SQL on both engines (SQLite's
``json_extract``, PostgreSQL's ``->>`` through ``memwarden_json_object``), inside the query
that ranks or lists, so a filter narrows the candidates before the top-k cut.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, TextClause, select, text

from memwarden.db import schema
from memwarden.errors import InvalidInputError

MAX_BYTES = 8192  # the canonical encoding, UTF-8
MAX_DEPTH = 4  # the object itself is depth 1
MAX_KEY_CHARS = 64
MAX_KEYS = 64  # per object
MAX_TOTAL_KEYS = 256  # over every nested object
MAX_CONDITIONS = 8
MAX_VALUE_CHARS = 500
# A key a ``where`` can name: no quote, backslash or control character (it goes into a
# SQLite JSON path, quoted).
_WHERE_KEY = re.compile(r'^[^"\\\x00-\x1f]{1,64}$')


def canonical(value: Mapping[str, Any]) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _no_constant(name: str) -> Any:
    raise InvalidInputError(f"metadata must be plain JSON: {name} is not a JSON number")


class RepeatedKeyError(ValueError):
    """A JSON object gives ``key`` twice (Python's ``json`` would keep the last silently)."""

    def __init__(self, key: str) -> None:
        super().__init__(f"the key {key!r} is given twice")
        self.key = key


def unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A ``json.loads`` object hook that raises ``RepeatedKeyError`` on a repeated key."""
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise RepeatedKeyError(key)
        seen[key] = value
    return seen


def parse(value: Any) -> str | None:
    """Validate metadata (a JSON object, or its text) and give its stored text (None for none
    or ``{}``). Raises ``InvalidInputError`` with one line saying what is wrong."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value, object_pairs_hook=unique_keys, parse_constant=_no_constant)
        except RepeatedKeyError as exc:
            raise InvalidInputError(f"metadata repeats the key {exc.key!r}") from exc
        except json.JSONDecodeError as exc:
            raise InvalidInputError(f"metadata is not valid JSON: {exc.msg} at {exc.pos}") from exc
    if not isinstance(value, dict):
        raise InvalidInputError(f"metadata must be a JSON object, not {_json_kind(value)}")
    counter = [0]
    _check(value, 1, "metadata", counter)
    if not value:
        return None
    stored = canonical(value)
    size = len(stored.encode("utf-8"))
    if size > MAX_BYTES:
        raise InvalidInputError(f"metadata is {size} bytes encoded, over the {MAX_BYTES} limit")
    return stored


def _json_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if value is None:
        return "null"
    return f"a {type(value).__name__}"


def _check(value: Any, depth: int, where: str, counter: list[int]) -> None:
    if isinstance(value, dict):
        if depth > MAX_DEPTH:
            raise InvalidInputError(f"metadata nests deeper than {MAX_DEPTH} levels at {where}")
        if len(value) > MAX_KEYS:
            raise InvalidInputError(f"metadata has {len(value)} keys in {where}, over {MAX_KEYS}")
        counter[0] += len(value)
        if counter[0] > MAX_TOTAL_KEYS:
            raise InvalidInputError(f"metadata has over {MAX_TOTAL_KEYS} keys in all")
        for key, item in value.items():
            if not isinstance(key, str) or not key:
                raise InvalidInputError(f"metadata keys must be non-empty strings (in {where})")
            if len(key) > MAX_KEY_CHARS:
                raise InvalidInputError(
                    f"metadata key {key[:20]!r}… is over {MAX_KEY_CHARS} characters"
                )
            if any(ord(c) < 0x20 for c in key):
                raise InvalidInputError(f"metadata key {key!r} holds a control character")
            _check_text(key, where)
            _check(item, depth + 1, f"{where}.{key}", counter)
    elif isinstance(value, list):
        if depth > MAX_DEPTH:
            raise InvalidInputError(f"metadata nests deeper than {MAX_DEPTH} levels at {where}")
        for index, item in enumerate(value):
            _check(item, depth + 1, f"{where}[{index}]", counter)
    elif isinstance(value, str):
        _check_text(value, where)
    elif isinstance(value, float) and not math.isfinite(value):
        raise InvalidInputError(f"metadata holds a number JSON cannot write at {where}")
    elif value is not None and not isinstance(value, (str, int, float, bool)):
        raise InvalidInputError(f"metadata holds a {type(value).__name__} at {where}")


def _check_text(text: str, where: str) -> None:
    """Text both engines store and read back alike: PostgreSQL's jsonb refuses ``\u0000``,
    and a lone surrogate cannot be written as UTF-8 at all."""
    if "\x00" in text:
        raise InvalidInputError(f"metadata holds a NUL character at {where}")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidInputError(
            f"metadata holds text that is not valid Unicode at {where}"
        ) from exc


def scalar_text(value: Any) -> str | None:
    """The text a ``where`` value is compared with (None: an object or array, never matched)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)):
        return json.dumps(value)
    return None


@dataclass(frozen=True)
class Condition:
    key: str
    value: str


Where = tuple[Condition, ...]


def parse_where(given: Iterable[str] | Mapping[str, Any] | Where | None) -> Where:
    """``key=value`` texts (the CLI's and the query string's) or a mapping of key to scalar
    (a JSON body's) as conditions (already parsed ones as they are); a bad one raises
    ``InvalidInputError``."""
    if not given:
        return ()
    if isinstance(given, tuple) and all(isinstance(c, Condition) for c in given):
        return given
    pairs: list[tuple[str, Any]] = []
    if isinstance(given, Mapping):
        pairs = list(given.items())
    else:
        for item in given:
            if not isinstance(item, str) or "=" not in item:
                raise InvalidInputError(f"a where condition is key=value, not {item!r}")
            key, _, value = item.partition("=")
            pairs.append((key.strip(), value))
    if len(pairs) > MAX_CONDITIONS:
        raise InvalidInputError(f"at most {MAX_CONDITIONS} where conditions")
    conditions = []
    for key, value in pairs:
        if not isinstance(key, str) or not _WHERE_KEY.match(key):
            raise InvalidInputError(
                f"where key {key!r} must be 1 to 64 characters, without quotes, backslashes "
                "or control characters"
            )
        wanted = scalar_text(value)
        if wanted is None:
            raise InvalidInputError(f"where {key}: compare with a string, number or boolean")
        if len(wanted) > MAX_VALUE_CHARS:
            raise InvalidInputError(f"where {key}: the value is over {MAX_VALUE_CHARS} characters")
        conditions.append(Condition(key, wanted))
    return tuple(conditions)


def matches(meta: Mapping[str, Any], where: Where) -> bool:
    """The filter in Python (what the SQL computes), for a memory's metadata object."""
    for condition in where:
        if condition.key not in meta:
            return False
        if scalar_text(meta[condition.key]) != condition.value:
            return False
    return True


def sql(where: Where, dialect: str, column: str = "t.metadata") -> tuple[str, dict[str, str]]:
    """The filter as a SQL condition on ``column`` (the stored text) with its bound
    parameters, for the full-text search's raw SQL and for ``clause``."""
    parts: list[str] = []
    params: dict[str, str] = {}
    for index, condition in enumerate(where):
        key, value = f"mw_meta_key_{index}", f"mw_meta_value_{index}"
        params[value] = condition.value
        if dialect == "sqlite":
            params[key] = '$."' + condition.key + '"'
            kind = f"json_type({column}, :{key})"
            parts.append(
                f"(CASE WHEN json_valid({column}) THEN (CASE {kind} "
                "WHEN 'true' THEN 'true' WHEN 'false' THEN 'false' WHEN 'null' THEN 'null' "
                "WHEN 'object' THEN NULL WHEN 'array' THEN NULL "
                f"ELSE CAST(json_extract({column}, :{key}) AS TEXT) END) END) = :{value}"
            )
        else:
            params[key] = condition.key
            found = f"memwarden_json_object({column})"
            parts.append(
                f"(CASE jsonb_typeof({found} -> CAST(:{key} AS TEXT)) WHEN 'null' THEN 'null' "
                "WHEN 'object' THEN NULL WHEN 'array' THEN NULL "
                f"ELSE {found} ->> CAST(:{key} AS TEXT) END) = CAST(:{value} AS TEXT)"
            )
    return " AND ".join(parts), params


def clause(where: Where, dialect: str, column: str = "memories.metadata") -> TextClause:
    """The filter as a SQLAlchemy clause, for queries built with SQLAlchemy Core."""
    condition, params = sql(where, dialect, column)
    return text(condition).bindparams(**params)


def matching_ids(conn: Connection, project: str | None, where: Where) -> frozenset[int]:
    """The recallable (active or superseded) memories whose metadata matches: recall's
    pre-filter of the vectors, which are searched outside SQL."""
    m = schema.memories
    query = select(m.c.id).where(
        m.c.status.in_(("active", "superseded")), clause(where, conn.dialect.name)
    )
    if project is not None:
        query = query.where(m.c.project == project)
    return frozenset(int(i) for i in conn.execute(query).scalars())
