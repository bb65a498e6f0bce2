"""Row MACs: a keyed MAC over the fields a memory or project-state row serves.

The ledger proves what was written; the MAC lets a read prove that the row it is about to serve
is still what the ledger's writer wrote, without replaying the ledger. Each row's MAC is
HMAC-SHA256 under a sub-key of the ledger key (``HMAC(key, "memwarden-row-mac")``: a row MAC can
never pass for a chain tag or a payload digest, nor the reverse) over the canonical JSON of the
table's name and its served fields, the row's identity included (a memory's id, a state entry's
project/category/key), so contents cannot be swapped between rows.

The MAC'd fields of each table are ONE named tuple below. A new column that recall, ``get``, a
context pack or any face serves must be added to its tuple (and to ``memory_fields`` /
``state_fields``), or an edit of it goes unseen at read time.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from datetime import UTC, datetime
from json.encoder import encode_basestring
from operator import attrgetter, itemgetter
from typing import Any, NamedTuple

from memwarden.audit.chain import ChainKey

SUBKEY_LABEL = b"memwarden-row-mac"
MEMORY = "memory"
STATE = "project_state"


class MemoryMacFields(NamedTuple):
    """A memory's served fields. Add here any new served column (issue 18's ``source_kind``,
    ``source_actor``, ``source_key``, ``tier``).

    ``metadata`` (migration 0017_metadata) is the stored canonical JSON text of the memory's
    metadata object, or None. It is the one field left out of the MAC's message when None, so
    a row without metadata keeps the MAC it had before the column existed (no re-blessing)."""

    id: int
    project: str
    type: str
    content: str
    content_hash: str
    confidence: float
    status: str
    source_chunk_id: int | None
    reinforcement_count: int
    superseded_by: int | None
    created_at: datetime
    updated_at: datetime
    last_reinforced_at: datetime | None
    metadata: str | None = None


class StateMacFields(NamedTuple):
    """A project-state entry's served fields; (project, category, key) is its identity."""

    project: str
    category: str
    key: str
    value: str
    source: str
    created_at: datetime
    updated_at: datetime


def iso(moment: datetime | str | None) -> str | None:
    """A time as one text whatever the engine gave back (aware or naive UTC)."""
    if moment is None:
        return None
    if isinstance(moment, datetime) and moment.tzinfo is UTC:  # the usual case, cheaply
        return moment.isoformat()
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat()


# The message is the JSON array [table, field, field, ...] in the tuple's order, written out by
# value type (a read checks ~10 rows per recall: json.dumps cost most of the 3% budget).
# Every number is written as a float, so an int on one side and a float on the other (an id,
# a confidence of 1) encode alike; ids stay exact below 2**53.
def _number(value: float) -> str:
    return float.__repr__(float(value))


# Up to 2**53 an int is exactly a float, whose repr is then its digits and ".0" (repr turns
# exponential only at 1e16); past it, float() rounds, so the float's own repr is written.
_EXACT_AS_FLOAT = 2**53


def _int(value: int) -> str:
    if -_EXACT_AS_FLOAT <= value <= _EXACT_AS_FLOAT:
        return f"{value}.0"
    return float.__repr__(float(value))


# The last UTC time written and its text: a row's times are often one instant (a memory never
# updated has created_at == updated_at), and isoformat is a tenth of a message's cost. Only an
# aware UTC time is looked up, and two such that compare equal write the same text. One tuple,
# replaced whole, so threads sharing it read a matching pair.
_last_time: tuple[datetime, str] = (datetime.min.replace(tzinfo=UTC), '"0001-01-01T00:00:00+00:00"')


def _time(value: datetime) -> str:
    global _last_time
    if value.tzinfo is UTC:  # an ISO time holds nothing JSON escapes
        last = _last_time
        if last[0] == value:
            return last[1]
        text = f'"{value.isoformat()}"'
        _last_time = (value, text)
        return text
    return encode_basestring(iso(value) or "")


def _null(_: None) -> str:
    return "null"


_ENCODERS: dict[type, Callable[[Any], str]] = {
    str: encode_basestring,
    int: _int,
    float: _number,
    type(None): _null,
    datetime: _time,
}


# For a subclass (never bool: not a served type), the general form of each: an int subclass
# may format itself otherwise, and a time subclass is not one of the memoised ones.
_FALLBACKS: dict[type, Callable[[Any], str]] = {
    **_ENCODERS,
    int: _number,
    datetime: lambda value: encode_basestring(iso(value) or ""),
}


def _encode(value: Any) -> str:
    encoder = _ENCODERS.get(type(value))
    if encoder is not None:
        return encoder(value)
    for kind, fallback in _FALLBACKS.items():
        if isinstance(value, kind) and not isinstance(value, bool):
            return fallback(value)
    raise TypeError(f"a row MAC cannot cover a {type(value).__name__}: add it to rowmac.py")


# The fields every memory row has had since 0010_row_macs; ``metadata`` is read apart, with a
# default, so 0010's own blessing (run before 0017 on an old store) reads rows without it.
_MEMORY_BASE = MemoryMacFields._fields[:-1]
_BASE_VALUES = attrgetter(*_MEMORY_BASE)
_STATE_VALUES = attrgetter(*StateMacFields._fields)
# A SQLAlchemy row is read through its mapping: a quarter of the cost of its attributes.
_BASE_ITEMS = itemgetter(*_MEMORY_BASE, "mac")
_BASE_FIELDS = itemgetter(*_MEMORY_BASE)
_STATE_ITEMS = itemgetter(*StateMacFields._fields, "mac")


def _memory_values(row: Any) -> tuple[Any, ...]:
    """The MAC'd values of a memory row or record, ``metadata`` last (None when absent)."""
    mapping = getattr(row, "_mapping", None)
    if mapping is not None:
        return (*_BASE_FIELDS(mapping), mapping.get("metadata"))
    return (*_BASE_VALUES(row), getattr(row, "metadata", None))


def _message_values(values: tuple[Any, ...]) -> tuple[Any, ...]:
    """A memory's values as its MAC's message holds them: no metadata, no trailing null."""
    return values[:-1] if values[-1] is None else values


def _split(
    row: Any, items: itemgetter[Any], values: attrgetter[Any]
) -> tuple[Any, tuple[Any, ...]]:
    """(the stored MAC, the MAC'd values) of a table row or of a domain record."""
    mapping = getattr(row, "_mapping", None)
    if mapping is not None:
        found = items(mapping)
        return found[-1], found[:-1]
    return getattr(row, "mac", None), values(row)


def _split_memory(row: Any) -> tuple[Any, tuple[Any, ...]]:
    mapping = getattr(row, "_mapping", None)
    if mapping is not None:
        found = _BASE_ITEMS(mapping)
        return found[-1], (*found[:-1], mapping.get("metadata"))
    return getattr(row, "mac", None), _memory_values(row)


def memory_fields(row: Any) -> MemoryMacFields:
    """The MAC'd fields of anything with the memory's attributes (a table row, a ``Memory``)."""
    return MemoryMacFields(*_memory_values(row))


def state_fields(row: Any) -> StateMacFields:
    """The MAC'd fields of anything with a state entry's attributes."""
    return StateMacFields(*_STATE_VALUES(row))


class RowMacs:
    """Makes and checks row MACs with the ledger key's row-MAC sub-key."""

    def __init__(self, key: ChainKey) -> None:
        self._key = key.derived(SUBKEY_LABEL)

    def mac(self, table: str, values: tuple[Any, ...]) -> str:
        try:
            parts = [_ENCODERS[type(value)](value) for value in values]
        except KeyError:
            parts = [_encode(value) for value in values]
        text = f"[{encode_basestring(table)},{','.join(parts)}]"
        return self._key.tag(text.encode("utf-8"))

    def memory(self, row: Any) -> str:
        return self.mac(MEMORY, _message_values(_memory_values(row)))

    def state(self, row: Any) -> str:
        return self.mac(STATE, _STATE_VALUES(row))

    def memory_ok(self, row: Any) -> bool:
        """True when the row carries the MAC of its fields (a row without one fails, as does
        one holding a value of a type no served field has: bytes where a number was)."""
        stored, values = _split_memory(row)
        try:
            expected = self.mac(MEMORY, _message_values(values))
        except TypeError:
            return False
        return isinstance(stored, str) and hmac.compare_digest(stored, expected)

    def state_ok(self, row: Any) -> bool:
        stored, values = _split(row, _STATE_ITEMS, _STATE_VALUES)
        try:
            expected = self.mac(STATE, values)
        except TypeError:
            return False
        return isinstance(stored, str) and hmac.compare_digest(stored, expected)
