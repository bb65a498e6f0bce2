"""Writing the ledger: one tagged row per mutation, inside the mutation's own transaction.

Entries are buffered while the mutation runs and appended just before its commit, so the
chain lock is held only from the append to the commit (on PostgreSQL, to the commit's record:
not through its WAL flush, see ``_flush``). On PostgreSQL a transaction-scoped
advisory lock serialises appenders: one global chain, never forked, and no deadlock because
every writer takes it last, after its own row locks. On SQLite the write transaction already
holds the database's single write lock.

Before extending the chain the appender checks that it still holds the witnessed head: a chain
cut short or put back from an older copy is still extended (the mutation is recorded), but the
witness is then never advanced over it, so the break stays visible to ``verify`` until an
operator resets the witness; the integrity hooks raise the alarm.

The witness is advanced before the mutation is acknowledged: the new head is written beside it
before the commit and put in place right after (``Witness.prepare`` / ``publish``), or, for a
PostgreSQL commit that leaves the lock before its flush, written and put in place once the
commit is durable (``Witness.advance``; on the process's tail, by the round that flushed it,
``Tail.flushes``). In strict mode a witness that cannot be written refuses the mutation; otherwise it commits and the
witness's fault hooks raise the alarm.

A ledger opened with a key the store was not made with (``refusal``) refuses every mutation
before anything is written: extending the chain with another key would fork it for good.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import structlog
from sqlalchemy import Connection, bindparam, insert, null, select, text
from sqlalchemy.exc import SQLAlchemyError

from memwarden.audit.chain import GENESIS_TAG, ChainKey, format_ts, header_bytes
from memwarden.audit.entries import (
    FailureHook,
    IntegrityHook,
    LedgerBuffer,
    LedgerEntry,
)
from memwarden.audit.keycheck import KeyCheck
from memwarden.audit.statements import DriverScript, DriverStatement, in_failed_transaction
from memwarden.audit.tail import Outcome, Tail
from memwarden.audit.witness import Head, Witness, WitnessWriteError
from memwarden.db import faults, schema
from memwarden.db.store import WriteUnit
from memwarden.errors import LedgerError

log = structlog.get_logger(__name__)

# Any constant will do; it names memwarden's chain among the database's advisory locks.
CHAIN_LOCK_ID = 0x6D656D77

# Every mutation runs these: built once, executed on the driver's cursor (see statements).
# A plain named savepoint rather than begin_nested(): SQLAlchemy compiles its savepoint
# statements anew on every call, which costs more than the append's own statements.
_SAVEPOINT = text("SAVEPOINT memwarden_ledger")
_CHAIN_LOCK = text("SELECT pg_advisory_xact_lock(:lock_id)").bindparams(lock_id=CHAIN_LOCK_ID)
_HEAD = (
    select(schema.ledger.c.seq, schema.ledger.c.tag).order_by(schema.ledger.c.seq.desc()).limit(1)
)
# Before the entries are tagged: (savepoint,) chain lock (PostgreSQL), head. One round trip
# on PostgreSQL; the head is read after the lock is held, with a snapshot of its own.
_OPEN = {
    (dialect, savepoint): DriverScript(
        *([_SAVEPOINT] if savepoint else []),
        *([_CHAIN_LOCK] if dialect == "postgresql" else []),
        _HEAD,
    )
    for dialect in ("sqlite", "postgresql")
    for savepoint in (True, False)
}
# After the append on the tail missed (``audit.tail``): back to the savepoint, then as _OPEN.
_OPEN_AFTER_MISS = DriverScript(text("ROLLBACK TO SAVEPOINT memwarden_ledger"), _CHAIN_LOCK, _HEAD)
_INSERT_ROWS = DriverStatement(insert(schema.ledger), [c.key for c in schema.ledger.columns])
_INSERT_PAYLOADS = DriverStatement(insert(schema.ledger_payloads), ["seq", "body"])
# PostgreSQL: a row and its payload in one statement (one round trip).
_INSERT_ENTRY = DriverStatement(
    {
        "postgresql": insert(schema.ledger_payloads)
        .values(seq=bindparam("seq"), body=bindparam("body"), erased_at=null())
        .add_cte(
            insert(schema.ledger)
            .values({c.key: bindparam(c.key) for c in schema.ledger.columns})
            .cte("ledger_row")
        )
    }
)
_MAY_FLUSH = DriverScript(
    text("SELECT has_function_privilege('pg_logical_emit_message(boolean, text, text)', 'EXECUTE')")
)
_OPEN_PREFIX = DriverScript(_SAVEPOINT, _CHAIN_LOCK)
_ROLLBACK_TO_SAVEPOINT = DriverScript(text("ROLLBACK TO SAVEPOINT memwarden_ledger"))
_RELEASE_SAVEPOINT = DriverScript(text("RELEASE SAVEPOINT memwarden_ledger"))


def passing(exc: SQLAlchemyError) -> bool:
    """A fault of the database, not of the ledger: one of the storage faults (a lock or
    statement timeout, a cancelled statement, a lost connection, SQLite's lock held past the
    busy timeout, a full disk, a read-only file), which the mutation's own commit would meet
    too. Fail-open is for a ledger that fails in itself (its table gone, a constraint, a
    permission): then the mutation commits and the alarm is raised."""
    if getattr(exc, "connection_invalidated", False):
        return True
    kind = faults.classify_error(exc)
    return kind is not None and kind is not faults.DAMAGED  # a ledger table gone: fail-open


class Ledger:
    """Appends entries to the chain. Records; never decides what a mutation may do."""

    def __init__(self, key: ChainKey, witness: Witness | None, *, strict: bool = False) -> None:
        self.key = key
        self.witness = witness
        self.strict = strict
        self.enabled = True
        self.failures = 0
        self.failure_hooks: list[FailureHook] = []
        self.integrity_hooks: list[IntegrityHook] = []
        # Called when a write sees the chain hold its witness's head again after a reported
        # disagreement (the witness reset, or the database put back): the episode is over.
        self.agreement_hooks: list[Callable[[], object]] = []
        self._confirmed: Head | None = None  # a witnessed head this chain was seen to hold
        self._reported: tuple[Head | None, str] | None = None
        # Set when the key is not the store's (``audit.keycheck``): every write refused.
        self.refusal: LedgerError | None = None
        self.key_check: KeyCheck | None = None  # set by whoever opened the ledger
        self._flush_allowed: bool | None = None  # PostgreSQL: see ``_may_flush``
        # PostgreSQL: the head this process appended last, to append on without reading it.
        self.tail = Tail(_OPEN_PREFIX)

    def attach(self, unit: WriteUnit) -> LedgerBuffer:
        if self.refusal is not None:
            raise self.refusal
        buffer = LedgerBuffer()

        def flush(conn: Connection) -> None:
            # Only the last hook before the commit may commit (see _flush).
            self._flush(conn, buffer, last=unit.before_commit[-1] is flush)

        unit.before_commit.append(flush)
        unit.after_commit.append(lambda: self._advance_witness(buffer))
        unit.on_abort.append(lambda: self._drop_witness(buffer))
        return buffer

    def _flush(self, conn: Connection, buffer: LedgerBuffer, *, last: bool = False) -> None:
        if not buffer.entries or not self.enabled:
            return
        # PostgreSQL, one entry (most mutations), nothing else to run before the commit
        # (``last``): the entry's insert and the COMMIT go in one round trip, so appenders
        # hold the chain lock for one round trip fewer (the store's commit that follows finds
        # nothing left to commit).
        commit_here = last and conn.dialect.name == "postgresql" and len(buffer.entries) == 1
        # Then the chain lock is not held through the WAL flush: the COMMIT releases it once
        # its record is written and the same round trip waits, outside the lock, until the WAL
        # is durable past it (concurrent flushes merge on the server). The caller is answered
        # after that wait. The next appender may chain after an entry not yet durable, but WAL
        # is flushed in order: no entry is durable without the ones before it. The witness is
        # advanced after the flush, so it never names a head a crash could take back. Strict
        # mode must refuse before the commit when the witness cannot be written, so it keeps
        # the witness prepared under the lock, and the lock through the flush.
        detached = commit_here and not self.strict and self._may_flush(conn)
        missed = False
        if detached:
            entry = buffer.entries[0]
            body = entry.payload_body()
            outcome, tail_head = self.tail.append(
                self, conn, entry, body, self.key.payload_digest(body)
            )
            if outcome is Outcome.DONE or outcome is Outcome.WITNESSED:
                buffer.head = tail_head
                buffer.witness_after = outcome is Outcome.DONE
                return
            missed = outcome is Outcome.MISSED
        try:
            rows, head, descends = self._tag(conn, buffer.entries, savepoint=True, resume=missed)
            if not commit_here:
                self._insert(conn, rows)
        except SQLAlchemyError as exc:
            self._fail_open(conn, exc, buffer)
            return
        buffer.head = head if descends else None
        if buffer.head is not None and self.witness is not None and not detached:
            try:
                buffer.witnessed = self.witness.prepare(buffer.head)
            except WitnessWriteError as exc:
                if self.strict:
                    raise LedgerError(
                        f"the ledger witness {self.witness.path} cannot be written ({exc}) and "
                        "strict mode is on: the mutation was refused, nothing was committed"
                    ) from exc
                # Fail-open: the witness's fault hooks have raised the alarm.
        if commit_here:
            try:
                _INSERT_ENTRY.execute_then_commit(conn, rows[0], flush_after=detached)
            except SQLAlchemyError as exc:
                if not in_failed_transaction(conn):
                    raise  # the COMMIT failed (or the connection): nothing is committed
                # The insert failed, the transaction is still open: committed without its
                # entry (fail-open), and its head must never reach the witness.
                self._drop_witness(buffer)
                buffer.head = None
                self._fail_open(conn, exc, buffer)
                return
            buffer.witness_after = detached
            if detached and buffer.head is not None:
                self.tail.prime(buffer.head)  # the next append may go on top of it

    def _may_flush(self, conn: Connection) -> bool:
        """Whether this role may run the flush statement (``WAL_FLUSH``), asked once. Without
        it the flush would fail after the commit: every caller would get an error for a
        mutation that did commit. Such a server keeps the lock through the flush instead."""
        if self._flush_allowed is None:
            self._flush_allowed = bool(_MAY_FLUSH.execute(conn, fetch=True)[0])
        return self._flush_allowed

    def _fail_open(self, conn: Connection, exc: SQLAlchemyError, buffer: LedgerBuffer) -> None:
        if passing(exc):
            # Not the ledger failing but the database, for the moment: the whole mutation is
            # refused (rolled back; the caller gets the storage fault and may retry) rather
            # than committed without its entry, which no retry could ever record.
            raise exc
        _ROLLBACK_TO_SAVEPOINT.execute(conn)
        _RELEASE_SAVEPOINT.execute(conn)
        self._on_failure(exc, buffer.entries)

    def append(self, conn: Connection, entries: list[LedgerEntry]) -> Head:
        """Append entries after the current head; the caller's transaction must commit them.
        The caller advances the witness after its commit (``advance_witness``)."""
        if self.refusal is not None:
            raise self.refusal
        return self._append(conn, entries)[0]

    def advance_witness(self, head: Head) -> None:
        """After the commit of rows appended with ``append``."""
        if self.witness is not None:
            self.witness.advance(head)

    def _append(
        self, conn: Connection, entries: list[LedgerEntry], *, savepoint: bool = False
    ) -> tuple[Head, bool]:
        """With ``savepoint``, the append runs inside a savepoint that the caller rolls back
        if it fails. On success it is left for the commit to release: on PostgreSQL that is
        one round trip fewer per mutation."""
        rows, head, descends = self._tag(conn, entries, savepoint=savepoint)
        self._insert(conn, rows)
        return head, descends

    @property
    def confirmed(self) -> Head | None:
        """The witnessed head this chain was last seen (read) to hold."""
        return self._confirmed

    def _tag(
        self, conn: Connection, entries: list[LedgerEntry], *, savepoint: bool, resume: bool = False
    ) -> tuple[list[dict[str, Any]], Head, bool]:
        """The rows that extend the chain, tagged after its head; the chain lock is held from
        here to the commit (PostgreSQL). ``resume``: after a missed append on the tail, whose
        savepoint this rolls back to."""
        # The payloads do not depend on the chain: encoded and digested before the lock, so
        # appenders waiting for it are not waiting for this too.
        bodies = [entry.payload_body() for entry in entries]
        digests = [self.key.payload_digest(body) for body in bodies]
        script = _OPEN_AFTER_MISS if resume else _OPEN[conn.dialect.name, savepoint]
        postgresql = conn.dialect.name == "postgresql"
        last = script.fetch_text(conn) if postgresql else script.execute(conn, fetch=True)
        seq, prev = (int(str(last[0])), str(last[1])) if last is not None else (0, GENESIS_TAG)
        descends = self._descends(conn, seq, prev)
        rows, head = self.tagged(entries, bodies, digests, seq, prev)
        return rows, head, descends

    def tagged(
        self, entries: list[LedgerEntry], bodies: list[str], digests: list[str], seq: int, prev: str
    ) -> tuple[list[dict[str, Any]], Head]:
        """The rows for ``entries`` after the head (seq, prev), and the new head."""
        ts = format_ts(datetime.now(UTC))
        rows = []
        for entry, body, digest in zip(entries, bodies, digests, strict=True):
            seq += 1
            header = header_bytes(
                seq,
                entry.entity_type,
                entry.entity_id,
                entry.project,
                entry.action,
                entry.actor,
                ts,
                digest,
                prev,
            )
            tag = self.key.tag(header)
            rows.append(
                {
                    "seq": seq,
                    "entity_type": entry.entity_type,
                    "entity_id": entry.entity_id,
                    "project": entry.project,
                    "action": entry.action,
                    "actor": entry.actor,
                    "ts": ts,
                    "payload_digest": digest,
                    "prev_tag": prev,
                    "tag": tag,
                    "body": body,
                }
            )
            prev = tag
        return rows, Head(seq, prev)

    @staticmethod
    def _insert(conn: Connection, rows: list[dict[str, Any]]) -> None:
        if conn.dialect.name == "postgresql":
            _INSERT_ENTRY.execute(conn, rows)
        else:
            # Each statement takes its own columns from the rows.
            _INSERT_ROWS.execute(conn, rows)
            _INSERT_PAYLOADS.execute(conn, rows)

    def _descends(self, conn: Connection, seq: int, tag: str) -> bool:
        """Whether the chain ending at (seq, tag) still holds the head the witness saw.

        Never cached when the chain is shorter than the witness: that is the rollback case."""
        if self.witness is None:
            return True
        record = self.witness.peek()
        if record is None:
            self._confirmed = None
            self._diverged(None, seq, "the ledger witness is missing or unreadable")
            return False
        seen = record.head
        if record.database_id != self.witness.database_id or record.key_id != self.witness.key_id:
            ok, why = False, "the witness belongs to another database or ledger key"
        elif seen.seq > seq:
            ok, why = (
                False,
                (
                    f"the chain ends at row {seq} but the witness saw row {seen.seq}: truncated "
                    "tail or a database put back from an older copy"
                ),
            )
        elif seen.seq == seq:
            ok = hmac.compare_digest(seen.tag, tag)
            why = f"row {seq} differs from the witness: the chain was rolled back and rewritten"
        elif seen == self._confirmed or (seen.seq == 0 and seen.tag == GENESIS_TAG):
            ok, why = True, ""
        else:
            held = conn.execute(
                select(schema.ledger.c.tag).where(schema.ledger.c.seq == seen.seq)
            ).scalar_one_or_none()
            ok = held is not None and hmac.compare_digest(str(held), seen.tag)
            why = (
                f"row {seen.seq} differs from the witness: the chain was rolled back and rewritten"
            )
        if ok:
            self._confirmed = seen
            if self._reported is not None:
                self._reported = None
                self._agreed()
        else:
            # The chain no longer holds what was confirmed: a cached confirmation must never
            # vouch for it again. Otherwise, after a cut of the rows from the witnessed head
            # on, the writes that refill the chain past that head would take the cache's word
            # (no look at the row) and advance the witness over the cut: laundered.
            self._confirmed = None
            self._diverged(seen, seq, why)
        return ok

    def _diverged(self, seen: Head | None, seq: int, why: str) -> None:
        """Shout once per witness state; the witness stays where it is."""
        if (seen, why) == self._reported:
            return
        self._reported = (seen, why)
        context: dict[str, Any] = {
            "chain_head_seq": seq,
            "witness_seq": seen.seq if seen is not None else None,
        }
        log.critical("ledger_witness_disagrees", reason=why, **context)
        for hook in self.integrity_hooks:
            try:
                hook(
                    "Ledger chain disagrees with its witness",
                    f"{why}. The witness is not advanced; run `memwarden audit verify`.",
                    context,
                )
            except Exception as hook_error:  # noqa: BLE001 - fail-open: an alert sink must not break the mutation
                log.error("ledger_integrity_hook_failed", error=str(hook_error))

    def _agreed(self) -> None:
        log.info("ledger_witness_agrees")
        for hook in self.agreement_hooks:
            try:
                hook()
            except Exception as hook_error:  # noqa: BLE001 - fail-open: an alert sink must not break the mutation
                log.error("ledger_agreement_hook_failed", error=str(hook_error))

    def _on_failure(self, exc: Exception, entries: list[LedgerEntry]) -> None:
        self.failures += 1
        log.error(
            "ledger_write_failed",
            error=str(exc).splitlines()[0] if str(exc) else type(exc).__name__,
            error_type=type(exc).__name__,
            entries=[(e.entity_type, e.entity_id, e.action, e.actor) for e in entries],
            strict=self.strict,
        )
        for hook in self.failure_hooks:
            try:
                hook(exc, entries)
            except Exception as hook_error:  # noqa: BLE001 - fail-open: an alert sink must not break the mutation
                log.error("ledger_failure_hook_failed", error=str(hook_error))
        if self.strict:
            raise LedgerError(
                "the ledger could not record this mutation and strict mode is on: refused"
            ) from exc

    def _advance_witness(self, buffer: LedgerBuffer) -> None:
        if buffer.witnessed is not None and self.witness is not None:
            prepared, buffer.witnessed = buffer.witnessed, None
            self.witness.publish(prepared)
        elif buffer.witness_after and buffer.head is not None and self.witness is not None:
            # Durable by now; a no-op when a later head is already there. A failed write is
            # reported to the witness's fault hooks (fail-open, as for ``publish``).
            self.witness.advance(buffer.head)

    def _drop_witness(self, buffer: LedgerBuffer) -> None:
        """The transaction did not commit: its head must never reach the witness."""
        if buffer.witnessed is not None and self.witness is not None:
            prepared, buffer.witnessed = buffer.witnessed, None
            self.witness.discard(prepared)
