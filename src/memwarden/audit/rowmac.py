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
from datetime import UTC, datetime
from typing import Any, NamedTuple

from memwarden.audit.chain import ChainKey, canonical_json

SUBKEY_LABEL = b"memwarden-row-mac"
MEMORY = "memory"
STATE = "project_state"


class MemoryMacFields(NamedTuple):
    """A memory's served fields. Add here any new served column (issue 18's ``source_kind``,
    ``source_actor``, ``source_key``, ``tier``; a ``metadata``)."""

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
    created_at: str | None
    updated_at: str | None
    last_reinforced_at: str | None


class StateMacFields(NamedTuple):
    """A project-state entry's served fields; (project, category, key) is its identity."""

    project: str
    category: str
    key: str
    value: str
    source: str
    created_at: str | None
    updated_at: str | None


def iso(moment: datetime | str | None) -> str | None:
    """A time as one text whatever the engine gave back (aware or naive UTC)."""
    if moment is None:
        return None
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat()


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


def memory_fields(row: Any) -> MemoryMacFields:
    """From anything with the memory's attributes: a table row or a ``Memory``."""
    return MemoryMacFields(
        int(row.id),
        row.project,
        row.type,
        row.content,
        row.content_hash,
        float(row.confidence),
        row.status,
        _int(row.source_chunk_id),
        int(row.reinforcement_count),
        _int(row.superseded_by),
        iso(row.created_at),
        iso(row.updated_at),
        iso(row.last_reinforced_at),
    )


def state_fields(row: Any) -> StateMacFields:
    """From anything with the state entry's attributes: a table row or a ``StateEntry``."""
    return StateMacFields(
        row.project,
        row.category,
        row.key,
        row.value,
        row.source,
        iso(row.created_at),
        iso(row.updated_at),
    )


class RowMacs:
    """Makes and checks row MACs with the ledger key's row-MAC sub-key."""

    def __init__(self, key: ChainKey) -> None:
        self._key = key.derived(SUBKEY_LABEL)

    def mac(self, table: str, fields: tuple[Any, ...]) -> str:
        return self._key.tag(canonical_json([table, *fields]).encode("utf-8"))

    def memory(self, row: Any) -> str:
        return self.mac(MEMORY, memory_fields(row))

    def state(self, row: Any) -> str:
        return self.mac(STATE, state_fields(row))

    def memory_ok(self, row: Any) -> bool:
        """True when the row carries the MAC of its fields (a row without one fails)."""
        stored = row.mac
        return isinstance(stored, str) and hmac.compare_digest(stored, self.memory(row))

    def state_ok(self, row: Any) -> bool:
        stored = row.mac
        return isinstance(stored, str) and hmac.compare_digest(stored, self.state(row))
