"""What one mutation appends to the ledger: its entries (``LedgerEntry``), buffered while it runs
(``LedgerBuffer``) and appended by ``audit/ledger.py`` just before its commit."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from memwarden.audit.actor import current_actor
from memwarden.audit.chain import canonical_json
from memwarden.audit.witness import Head, Prepared

Snapshot = dict[str, Any]
FailureHook = Callable[[Exception, "list[LedgerEntry]"], None]
# (title, message, context): the chain in the database disagrees with the witness.
IntegrityHook = Callable[[str, str, dict[str, Any]], None]


def state_entity_id(project: str, category: str, key: str) -> str:
    """How the ledger names a project state entry (entity ``project_state``). JSON keeps the
    three parts apart whatever characters they hold."""
    return json.dumps([project, category, key], ensure_ascii=False, separators=(",", ":"))


@dataclass(frozen=True)
class LedgerEntry:
    entity_type: str
    entity_id: str
    project: str | None
    action: str
    actor: str
    before: Snapshot | None
    after: Snapshot | None
    note: str | None = None
    extra: Snapshot | None = None

    def payload_body(self) -> str:
        payload: dict[str, Any] = {"after": self.after, "before": self.before, "note": self.note}
        if self.extra:
            payload["extra"] = self.extra
        return canonical_json(payload)


@dataclass
class LedgerBuffer:
    """The entries one mutation transaction will append."""

    entries: list[LedgerEntry] = field(default_factory=list)
    head: Head | None = None
    witnessed: Prepared | None = None  # the new head, written beside the witness
    # The head is put in the witness after the commit is durable (``Ledger._flush``), rather
    # than prepared under the chain lock.
    witness_after: bool = False

    def record(
        self,
        entity_type: str,
        entity_id: str | int,
        project: str | None,
        action: str,
        before: Snapshot | None,
        after: Snapshot | None,
        note: str | None = None,
        extra: Snapshot | None = None,
    ) -> None:
        self.entries.append(
            LedgerEntry(
                entity_type=entity_type,
                entity_id=str(entity_id),
                project=project,
                action=action,
                actor=current_actor(),
                before=before,
                after=after,
                note=note,
                extra=extra,
            )
        )
