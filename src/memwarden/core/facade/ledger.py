"""Facade methods: the ledger read back: a memory's history and time travel, who was served
it, and the chain's verification against the witness or an anchor (audit/)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select

from memwarden.audit import records, timetravel
from memwarden.audit import verify as verifying
from memwarden.audit.chain import GENESIS_TAG
from memwarden.audit.oplog import logged
from memwarden.audit.reads import Served
from memwarden.audit.records import LedgerRecord
from memwarden.audit.witness import Head
from memwarden.core import access, memory_reads, opening, rewind
from memwarden.core.facade.base import FacadeBase
from memwarden.db import schema
from memwarden.errors import LedgerError

# How many of the newest rows ``ledger_check`` verifies (the dashboard's cheap status).
LEDGER_CHECK_ROWS = 256


class LedgerFacade(FacadeBase):
    @logged
    def history(self, memory_id: int) -> list[LedgerRecord]:
        records_ = rewind.history_of(self.runtime, memory_id)
        if records_ and records_[0].project is not None:
            access.check_read(records_[0].project)
        return records_

    @logged
    def as_of(self, memory_id: int, at: datetime) -> dict[str, Any] | None:
        return timetravel.as_of(self._authentic_history(memory_id), f"memory {memory_id}", at)

    @logged
    def diff(self, memory_id: int, from_seq: int, to_seq: int) -> list[timetravel.FieldChange]:
        history = self._authentic_history(memory_id)
        name = f"memory {memory_id}"
        old = timetravel.version(history, from_seq, name)
        new = timetravel.version(history, to_seq, name)
        return timetravel.diff(old.after, new.after)

    @logged
    def blame(self, memory_id: int) -> list[timetravel.BlameLine]:
        return timetravel.blame(self._authentic_history(memory_id))

    def _authentic_history(self, memory_id: int) -> list[LedgerRecord]:
        """The history time travel rebuilds state from: refused whole when a row of it was
        edited outside memwarden (``history`` shows such rows, marked)."""
        found = self.history(memory_id)
        records.require_authentic(found)
        return found

    @logged
    def recent(self, **filters: Any) -> list[LedgerRecord]:
        with self.store.read() as conn:
            return records.recent(conn, **filters, key=self.ledger.key)

    @logged
    def readers(self, memory_id: int, limit: int = 200) -> list[Served]:
        """Who was served this memory, newest first, and which version (ledger seq)."""
        # A clear 404 for an unknown memory; a tampered one still has readers to show.
        memory_reads.get(self.runtime, memory_id, include_tampered=True)
        self.reads.flush()
        return self.reads.readers(memory_id, limit)

    @logged
    def verify(
        self,
        from_seq: int = 1,
        anchor: Head | None = None,
        progress: verifying.Progress | None = None,
        *,
        use_witness: bool = True,
    ) -> verifying.VerifyReport:
        """``use_witness=False`` checks the chain (and the anchor, if given) without the
        witness: before resetting a witness that is missing or rightly disagrees."""
        assert self.ledger.witness is not None
        if self.ledger.refusal is not None:
            raise self.ledger.refusal
        witness = self.ledger.witness.read() if use_witness else None
        with self.store.read() as conn:
            return verifying.verify(
                conn,
                self.ledger.key,
                witness=witness,
                database_id=self.database_id,
                from_seq=from_seq,
                anchor=anchor,
                progress=progress,
                workers=self.settings.resolved_verify_workers,
                reread=self.ledger.witness.peek if use_witness else None,
            )

    def ledger_check(self, rows: int = LEDGER_CHECK_ROWS) -> verifying.VerifyReport:
        """Verify the newest ``rows`` ledger rows and the head witness: a cheap status that
        catches a rewritten tail or a rolled-back database (``verify`` walks the whole chain)."""
        assert self.ledger.witness is not None
        if self.ledger.refusal is not None:
            raise self.ledger.refusal  # a wrong key would call every row forged
        return opening.check_newest_rows(
            self.store, self.ledger, self.database_id, rows, "from the dashboard"
        )

    @logged
    def anchor(self) -> Head:
        with self.store.read() as conn:
            head = records.head(conn)
        return Head(*head) if head else Head(0, GENESIS_TAG)

    @logged
    def reset_witness(self, *, force: bool = False) -> Head:
        """Re-write the witness at the current head: only after verifying against an anchor.

        Without ``force`` (the CLI's ``--anchor``: the operator verified against a head they
        kept), refused when the witness there now is readable and
        says more than the chain holds: a head past the chain's end, another row at its
        place, or another database. Resetting then would erase the one record that rows were
        cut or the database put back; an operator who means it passes the head they expect
        as the anchor. A missing or unreadable witness, or one that merely lags the chain,
        is reset."""
        assert self.ledger.witness is not None
        if self.ledger.refusal is not None:
            raise self.ledger.refusal
        head = self.anchor()
        if not force:
            self._refuse_to_hide_a_cut(head)
        self.ledger.witness.reset(head)
        return head

    def _refuse_to_hide_a_cut(self, head: Head) -> None:
        assert self.ledger.witness is not None
        seen = self.ledger.witness.peek()
        if seen is None:
            return
        if seen.database_id != self.database_id:
            raise LedgerError(
                "the witness there now belongs to another database: resetting it would hide "
                "that; pass --anchor SEQ:TAG (a head you kept) to reset anyway"
            )
        if seen.head.seq > head.seq:
            raise LedgerError(
                f"the witness saw row {seen.head.seq} but the chain ends at row {head.seq}: "
                f"{seen.head.seq - head.seq} row(s) are gone (a cut tail, or an older copy of "
                "the database); resetting would hide that. Pass --anchor SEQ:TAG (the head you "
                "expect) to reset anyway"
            )
        if seen.head.seq == 0:
            return
        with self.store.read() as conn:
            tag = conn.execute(
                select(schema.ledger.c.tag).where(schema.ledger.c.seq == seen.head.seq)
            ).scalar_one_or_none()
        if tag != seen.head.tag:
            raise LedgerError(
                f"the witness names row {seen.head.seq}, which the chain does not hold as it "
                "saw it: the chain was rewritten from there; resetting would hide that. Pass "
                "--anchor SEQ:TAG to reset anyway"
            )
