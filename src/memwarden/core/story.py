"""A memory's whole story for the dashboard: its versions with what each one changed, who
last set each field, and which versions a revert could return to."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from memwarden.audit.records import LedgerRecord
from memwarden.audit.timetravel import (
    BOOKKEEPING_FIELDS,
    BlameLine,
    FieldChange,
    blame,
    diff,
    version,
)
from memwarden.core import lifecycle
from memwarden.core.models import Memory
from memwarden.core.rewind import OPTIONAL_REVERTED_FIELDS, REVERTED_FIELDS

__all__ = ["BlameLine", "FieldChange", "MemoryStory", "Version", "revert_changes", "tell"]

# Left out of what a version changed: bookkeeping, and the hash that follows the content.
QUIET_FIELDS = BOOKKEEPING_FIELDS | {"content_hash"}
# Left out of blame too: the id is never set by anyone but the row's creation.
UNBLAMED_FIELDS = QUIET_FIELDS | {"id"}


@dataclass(frozen=True)
class Version:
    record: LedgerRecord
    revertible: bool  # a revert to this row's snapshot would change something and is legal

    @property
    def changes(self) -> list[FieldChange]:
        """What this row changed, bookkeeping left out (worked out when asked: a page shows
        a hundred of a memory's thousand versions)."""
        record = self.record
        return [c for c in diff(record.before, record.after) if c.field not in QUIET_FIELDS]

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.record.to_dict(),
            "changes": [c.__dict__ for c in self.changes],
            "revertible": self.revertible,
        }


@dataclass(frozen=True)
class MemoryStory:
    memory: Memory
    versions: list[Version]  # oldest first
    blame: list[BlameLine]
    # What this memory replaced (core/changes.py ``supersedes``): id, content, when, by whom.
    supersedes: list[dict[str, Any]] = field(default_factory=list)


def revert_changes(memory: Memory, target: dict[str, Any]) -> list[FieldChange]:
    """What a revert to ``target`` (a snapshot) would change in ``memory``."""
    return _changes(memory.snapshot(), target)


def _changes(current: dict[str, Any], target: dict[str, Any]) -> list[FieldChange]:
    return [
        FieldChange(name, current.get(name), target.get(name))
        for name in REVERTED_FIELDS + OPTIONAL_REVERTED_FIELDS
        if current.get(name) != target.get(name)
    ]


def _revertible(memory: Memory, current: dict[str, Any], record: LedgerRecord) -> bool:
    target = record.after
    if memory.status == lifecycle.ERASED or record.erased or target is None:
        return False
    if record.authentic is False:
        return False
    if any(name not in target for name in REVERTED_FIELDS):
        return False
    return bool(_changes(current, target)) and lifecycle.can_move(memory.status, target["status"])


def tell(
    memory: Memory,
    history: list[LedgerRecord],
    supersedes: list[dict[str, Any]] | None = None,
) -> MemoryStory:
    current = memory.snapshot()
    versions = [Version(record, _revertible(memory, current, record)) for record in history]
    # Blame is rebuilt from every row: none when one of them was edited outside memwarden.
    edited = any(record.authentic is False for record in history)
    lines = [] if edited else [line for line in blame(history) if line.field not in UNBLAMED_FIELDS]
    return MemoryStory(memory, versions, lines, supersedes or [])


def preview_revert(
    memory: Memory, history: list[LedgerRecord], to_seq: int
) -> tuple[LedgerRecord, list[FieldChange]]:
    """The version at ``to_seq`` and what reverting to it would change."""
    target = version(history, to_seq, f"memory {memory.id}")
    return target, revert_changes(memory, target.after or {})
