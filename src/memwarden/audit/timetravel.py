"""Time travel over one entity's ledger: as it was, what changed, who set each field."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from memwarden.audit.chain import format_ts
from memwarden.audit.records import LedgerRecord
from memwarden.errors import InvalidInputError, NotFoundError

# Fields every write touches; they say nothing about who set the memory's meaning.
BOOKKEEPING_FIELDS = frozenset({"updated_at"})


@dataclass(frozen=True)
class FieldChange:
    field: str
    before: Any
    after: Any


@dataclass(frozen=True)
class BlameLine:
    field: str
    value: Any
    actor: str
    ts: str
    seq: int
    action: str


def as_of(history: list[LedgerRecord], entity_id: str, at: datetime) -> dict[str, Any] | None:
    """The entity's snapshot as it stood at ``at`` (None once it was deleted)."""
    if not history:
        raise NotFoundError(f"no ledger history for {entity_id}")
    stamp = format_ts(at)
    if stamp < history[0].ts:
        raise InvalidInputError(f"{entity_id} did not exist yet at {at.isoformat()}")
    current = history[0]
    for record in history:
        if record.ts > stamp:
            break
        current = record
    return current.after


def version(history: list[LedgerRecord], seq: int, entity_id: str) -> LedgerRecord:
    for record in history:
        if record.seq == seq:
            return record
    raise InvalidInputError(f"ledger row {seq} is not part of {entity_id}'s history")


def diff(before: dict[str, Any] | None, after: dict[str, Any] | None) -> list[FieldChange]:
    before, after = before or {}, after or {}
    return [
        FieldChange(name, before.get(name), after.get(name))
        for name in sorted(set(before) | set(after))
        if before.get(name) != after.get(name)
    ]


def blame(history: list[LedgerRecord]) -> list[BlameLine]:
    """For each field of the latest snapshot: the row that last changed it."""
    lines: dict[str, BlameLine] = {}
    previous: dict[str, Any] = {}
    for record in history:
        snapshot = record.after or {}
        for name, value in snapshot.items():
            if name in lines and previous.get(name) == value:
                continue
            lines[name] = BlameLine(name, value, record.actor, record.ts, record.seq, record.action)
        previous = snapshot
    return [lines[name] for name in sorted(lines) if name not in BOOKKEEPING_FIELDS]
