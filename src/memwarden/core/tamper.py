"""The read-time check of row MACs: a row edited outside memwarden is never served as trusted.

Recall and context packs leave such a row out; ``get`` refuses it to ordinary callers and shows
it, flagged, to an admin; a mutation refuses to build on it (a new MAC over the attacker's
text would bless it). Each tampered row raises one critical alert per process (a fault keyed by
the row: repeats are counted, not re-sent), ended by the repair that restores it.

With the wrong ledger key every MAC fails: that is the ledger's key refusal, not a store full of
tampered rows, so the refusal is raised instead.
"""

from __future__ import annotations

from hashlib import sha256
from typing import Any

import structlog

from memwarden.audit.entries import state_entity_id
from memwarden.audit.ledger import Ledger
from memwarden.audit.rowmac import MEMORY, STATE, RowMacs
from memwarden.errors import TamperedRowError
from memwarden.observability.faults import clear_fault, raise_fault

log = structlog.get_logger(__name__)


def fault_key(kind: str, ident: str) -> str:
    # An alert's fingerprint keeps 64 characters: a long state id is named by its hash.
    if len(ident) > 24:
        ident = sha256(ident.encode("utf-8")).hexdigest()[:24]
    return f"tampered_row:{kind}:{ident}"


class RowGuard:
    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger
        self.macs = RowMacs(ledger.key)

    def memory_ok(self, row: Any) -> bool:
        """Check a memories row; a failure is reported (alert once, log) and False returned."""
        if self.macs.memory_ok(row):
            return True
        self._report(MEMORY, str(int(row.id)), row.project)
        return False

    def state_ok(self, row: Any) -> bool:
        if self.macs.state_ok(row):
            return True
        self._report(STATE, state_entity_id(row.project, row.category, row.key), row.project)
        return False

    def require_memory(self, row: Any) -> None:
        if not self.memory_ok(row):
            raise TamperedRowError(MEMORY, str(int(row.id)), row.project)

    def require_state(self, row: Any) -> None:
        if not self.state_ok(row):
            ident = state_entity_id(row.project, row.category, row.key)
            raise TamperedRowError(STATE, ident, row.project)

    def _report(self, kind: str, ident: str, project: str | None) -> None:
        if self._ledger.refusal is not None:
            raise self._ledger.refusal
        log.error("row_mac_mismatch", kind=kind, id=ident, project=project)
        raise_fault(
            fault_key(kind, ident),
            f"Tampered {kind} row",
            f"{kind} {ident} (project {project!r}) was changed outside memwarden: its row MAC "
            "does not match, so it is withheld from recall and context packs; "
            "`memwarden integrity check --fix` restores it from its last ledger snapshot",
            {"kind": kind, "id": ident, "project": project},
        )

    def report_key(self, name: str) -> None:
        """An API key whose row does not match its ledger record: refused, alerted once."""
        if self._ledger.refusal is not None:
            raise self._ledger.refusal
        log.error("api_key_row_mismatch", key=name)
        raise_fault(
            fault_key("api_key", name),
            "Tampered API key row",
            f"the API key {name!r} was changed outside memwarden (inserted, un-revoked, or "
            "given another role, scopes or token hash: its row does not match its ledger "
            "record); it is refused. Revoke it and check who can write the database",
            {"kind": "api_key", "id": name},
        )

    @staticmethod
    def restored(kind: str, ident: str) -> None:
        clear_fault(fault_key(kind, ident))
