"""Finishing an erase on disk: no old copy of the erased text left in the database's files.

The erase transaction overwrote the rows (SQLite with ``secure_delete``: freed bytes zeroed).
What is left is engine-specific, and never worth stalling other writers for:
- SQLite: the write-ahead log still holds the pages as they were before the erase until it is
  checkpointed and emptied. ``wal_checkpoint(TRUNCATE)`` runs with no busy wait: it either
  empties the log at once or reports busy (a reader still reads an older snapshot, or a writer
  is at work) and the receipt stays ``pending``. Never the blocking checkpoint that waited
  out every reader while holding the write lock (30 s stalls).
- PostgreSQL: the old row versions stay in the table files as dead tuples, and plain VACUUM
  frees them without overwriting their bytes (a GIN index even keeps the erased words). Once
  no snapshot older than the erasing transaction is open, the tables the erase touched are
  rewritten (``VACUUM FULL``), each under a short lock timeout and only while they are small
  enough (``MEMWARDEN_ERASE_REWRITE_MAX_MB``) to rewrite in well under a second; larger ones
  stay ``pending`` until ``memwarden memory erase-scrub --rewrite`` is run. The server's own
  write-ahead log and backups are beyond memwarden's reach (docs/storage.md).
When a scrub completes, the receipt becomes ``scrubbed`` and the ledger records it
(entity ``erasure``, action ``scrubbed``, by the actor who asked for the erase).
A ``Scrubber`` thread retries pending receipts in the background, with backoff.
"""

from __future__ import annotations

import contextlib
import threading
import time
from datetime import UTC, datetime
from typing import Any

import structlog
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from memwarden.audit import records
from memwarden.audit.actor import acting_as
from memwarden.core.erasure import receipt as receipts
from memwarden.core.erasure.receipt import EraseReceipt
from memwarden.core.runtime import Runtime
from memwarden.db.store import Store
from memwarden.errors import ClosedError, first_line
from memwarden.observability.alerts import emit_alert

log = structlog.get_logger(__name__)

_SIZE = text("SELECT pg_total_relation_size(CAST(:name AS regclass))")
_SET_LOCK_TIMEOUT = text("SELECT set_config('lock_timeout', :value, false)")
LOCK_TIMEOUT_MS = 500
# What holds back the cleanup horizon (and so keeps a dead row version in a rewrite): a
# backend's snapshot (xmin) or its own still-open transaction (xid, which counts even between
# statements, when no snapshot is held), in this database or in none (background workers), a
# prepared transaction, a replication slot.
_OLDER_SNAPSHOTS = text(
    "SELECT (SELECT count(*) FROM pg_stat_activity WHERE pid <> pg_backend_pid() "
    "  AND (datname = current_database() OR datname IS NULL) "
    "  AND (age(backend_xmin) >= age(CAST(:xid AS xid)) "
    "       OR age(backend_xid) >= age(CAST(:xid AS xid)))) "
    "+ (SELECT count(*) FROM pg_prepared_xacts WHERE age(transaction) >= age(CAST(:xid AS xid))) "
    "+ (SELECT count(*) FROM pg_replication_slots "
    "   WHERE age(xmin) >= age(CAST(:xid AS xid)) "
    "   OR age(catalog_xmin) >= age(CAST(:xid AS xid)))"
)


def sqlite_wal_emptied(store: Store) -> bool:
    """Checkpoint and truncate the write-ahead log without waiting; True when it is empty."""
    busy_ms = int(store.settings.sqlite_busy_timeout_ms)
    # Not beside the store's own checkpoint thread: the two would meet as "busy".
    ours = store.checkpointer.lock if store.checkpointer is not None else contextlib.nullcontext()
    try:
        with ours, store.connect() as conn:
            raw: Any = conn.connection.dbapi_connection
            raw.execute("PRAGMA busy_timeout=0")
            try:
                busy, _, _ = raw.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            finally:
                raw.execute(f"PRAGMA busy_timeout={busy_ms}")
    except (SQLAlchemyError, store.engine.dialect.dbapi.Error) as exc:  # type: ignore[union-attr]
        log.warning("erase_scrub_checkpoint_failed", error=str(exc))
        return False
    return int(busy) == 0


def touched_tables(receipt: EraseReceipt) -> list[str]:
    """The tables whose rows the erase rewrote (their old versions hold the text)."""
    erased = receipt.erased
    found: list[str] = []
    if erased.memories:
        found += ["memories", "ledger_payloads"]
    if erased.interactions:
        found += ["interactions", "ledger_payloads"]
    if erased.chunks:
        found.append("source_chunks")
    if erased.oplog_rows:
        found.append("operation_log")
    if erased.alerts:
        found.append("alerts")
    return sorted(set(found))


def pg_dead_rows_rewritten(
    store: Store, batch: list[EraseReceipt], max_bytes: int | None
) -> tuple[bool, str | None]:
    """Rewrite the touched tables (``VACUUM FULL``: plain VACUUM frees the dead versions but
    leaves their bytes in the pages, and a GIN index keeps the erased words) once no snapshot
    older than the erase is open. Each rewrite holds its table's lock for as long as it
    takes, so only tables up to ``max_bytes`` together are rewritten here, and the lock is
    given up after LOCK_TIMEOUT rather than queueing writers behind it. Returns (done, why not)."""
    tables = sorted({table for receipt in batch for table in touched_tables(receipt)})
    if not tables:
        return True, None
    horizons = [int(r.horizon) for r in batch if r.horizon]
    xid = str(max(horizons) % 2**32) if horizons else None
    try:
        with store.connect() as conn:
            conn = conn.execution_options(isolation_level="AUTOCOMMIT")
            if xid is not None and int(conn.execute(_OLDER_SNAPSHOTS, {"xid": xid}).scalar_one()):
                return False, "a snapshot older than the erase is still open"
            schema = conn.exec_driver_sql("SELECT current_schema()").scalar_one()
            names = [f'"{schema}"."{table}"' for table in tables]
            size = sum(int(conn.execute(_SIZE, {"name": name}).scalar_one()) for name in names)
            if max_bytes is not None and size > max_bytes:
                return False, (
                    f"the tables to rewrite hold {size // 2**20} MiB, over the "
                    f"{max_bytes // 2**20} MiB done in the background: run "
                    "`memwarden memory erase-scrub --rewrite` in a quiet hour"
                )
            # A session setting on a pooled connection: always put back as it was (the store's
            # bound, db/engine.py, which RESET would drop), or the next ordinary write on this
            # connection would give up after LOCK_TIMEOUT_MS too.
            before = conn.exec_driver_sql("SHOW lock_timeout").scalar_one()
            conn.exec_driver_sql(f"SET lock_timeout = '{LOCK_TIMEOUT_MS}ms'")
            try:
                for name in names:
                    conn.exec_driver_sql(f"VACUUM (FULL) {name}")
            finally:
                conn.execute(_SET_LOCK_TIMEOUT, {"value": before})
    except SQLAlchemyError as exc:
        first = first_line(exc)
        log.warning("erase_scrub_rewrite_failed", error=first)
        return False, first
    return True, None


def vouched(rt: Runtime, receipt: EraseReceipt) -> bool:
    """Whether the ledger vouches for the receipt: an authentic ``erased`` record by the
    receipt's actor for every memory it names (an erase always writes one), or, for a receipt
    that names no memory, for at least one of its interactions or chunks (those it lists may
    have been blank already: no record is written then). A receipt that fails (a row put in
    the erasures table by hand: the scrub recorded it as scrubbed, under the invented actor,
    while the memory it named stayed live) is marked ``refused`` and a critical alert raised.
    Asked once per receipt and process."""
    if receipt.id in rt.vouched_receipts:
        return True
    key = rt.ledger.key
    erased = receipt.erased

    def has_record(conn: Any, entity: str, ident: int) -> bool:
        return any(
            record.authentic and record.action == "erased" and record.actor == receipt.actor
            for record in records.history(conn, entity, str(ident), key)
        )

    with rt.read() as conn:
        if erased.memories:
            ok = all(has_record(conn, "memory", ident) for ident in erased.memories)
        else:
            named = [("interaction", i) for i in erased.interactions]
            named += [("chunk", i) for i in erased.chunks]
            ok = any(has_record(conn, entity, ident) for entity, ident in named)
    if ok:
        rt.vouched_receipts.add(receipt.id)
        return True
    log.error("erase_receipt_not_vouched", receipt=receipt.id, actor=receipt.actor)
    emit_alert(
        "critical",
        "Forged erasure receipt",
        f"erasure receipt {receipt.id} (actor {receipt.actor!r}) names an erase the ledger "
        "does not hold by that actor: it was written outside memwarden; refused, never scrubbed "
        "or recorded. Check who can write the database",
        {"receipt": receipt.id, "actor": receipt.actor},
    )
    with rt.store.write() as unit:
        receipts.mark(unit.conn, receipt.id, receipts.REFUSED, [], receipt.attempts, None)
    receipt.status, receipt.pending = receipts.REFUSED, []
    return False


def attempt(rt: Runtime, receipt: EraseReceipt, *, rewrite_any_size: bool = False) -> EraseReceipt:
    """Try once to finish the scrub of ``receipt``; returns it as it now stands."""
    return attempt_all(rt, [receipt], rewrite_any_size=rewrite_any_size)[0]


def attempt_all(
    rt: Runtime, batch: list[EraseReceipt], *, rewrite_any_size: bool = False
) -> list[EraseReceipt]:
    """Try once to finish the scrub of every receipt of ``batch`` together (one checkpoint, or
    one rewrite of the tables they touched). ``rewrite_any_size``: PostgreSQL rewrites the
    tables whatever their size."""
    batch = [receipt for receipt in batch if not receipt.done]
    todo = [receipt for receipt in batch if vouched(rt, receipt)]  # refused ones are done
    if not todo:
        return batch
    store = rt.store
    if store.is_sqlite:
        finished = sqlite_wal_emptied(store)
    else:
        limit = None if rewrite_any_size else rt.settings.erase_rewrite_max_mb * 2**20
        finished, why = pg_dead_rows_rewritten(store, todo, limit)
        if why is not None:
            log.info("erase_scrub_pending", receipts=[r.id for r in todo], why=why)
    if not finished:
        with store.write() as unit:
            for receipt in todo:
                receipt.attempts += 1
                receipts.mark(
                    unit.conn, receipt.id, receipts.PENDING, receipt.pending, receipt.attempts, None
                )
        return batch
    now = datetime.now(UTC)
    for receipt in todo:
        # Each by the actor who asked for that erase.
        with acting_as(receipt.actor), rt.mutation() as m:
            current = receipts.load(m.conn, receipt.id)
            if current.done:  # the background scrub (or another process) finished it first
                receipt.status, receipt.pending = current.status, current.pending
                receipt.attempts, receipt.scrubbed_at = current.attempts, current.scrubbed_at
                continue
            attempts = receipt.attempts + 1
            receipts.mark(m.conn, receipt.id, receipts.SCRUBBED, [], attempts, now)
            m.record(
                "erasure",
                receipt.id,
                None,
                "scrubbed",
                None,
                {"status": receipts.SCRUBBED, "cleared": receipt.pending, "attempts": attempts},
            )
        log.info("erase_scrubbed", receipt=receipt.id, attempts=attempts)
        receipt.status, receipt.pending = receipts.SCRUBBED, []
        receipt.attempts, receipt.scrubbed_at = attempts, now
    return batch


class Scrubber:
    """Retries pending scrubs in a background thread until none is left, then stops; started
    again by the next erase that leaves one pending. Fail-open: a failed try is logged and
    retried later (the receipt says ``pending`` meanwhile)."""

    FIRST_DELAY = 0.25
    MAX_DELAY = 30.0

    def __init__(self, rt: Runtime) -> None:
        self._rt = rt
        self._lock = threading.Lock()
        self._pass = threading.Lock()  # one pass at a time: the thread's, or one asked for
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def anything_pending(self) -> bool:
        with self._rt.read() as conn:
            return receipts.any_pending(conn)

    def kick(self) -> None:
        with self._lock:
            self._wake.set()
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="memwarden-erase-scrub", daemon=True
                )
                self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout=5)

    def _run(self) -> None:
        delay = self.FIRST_DELAY
        while not self._stop.is_set():
            self._wake.wait(delay)
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                left = self.run_once()
            except ClosedError:
                return  # closed under the pass: the next open finds what is pending (kick)
            except Exception as exc:  # noqa: BLE001 - fail-open: logged, retried later
                log.error("erase_scrub_failed", error=str(exc), error_type=type(exc).__name__)
                left = 1
            if left == 0:
                return
            delay = min(delay * 2, self.MAX_DELAY)

    def run_once(self, *, rewrite_any_size: bool = False) -> int:
        """One pass over the pending receipts; how many are still pending."""
        with self._pass:
            with self._rt.read() as conn:
                waiting = receipts.pending(conn)
            done = attempt_all(self._rt, waiting, rewrite_any_size=rewrite_any_size)
        return sum(not receipt.done for receipt in done)


def wait(rt: Runtime, receipt: EraseReceipt, timeout: float) -> EraseReceipt:
    """Try the scrub until it completes or ``timeout`` seconds pass (``erase --wait``)."""
    deadline = time.monotonic() + timeout
    delay = 0.1
    while True:
        receipt = attempt(rt, receipt)
        if receipt.done or time.monotonic() >= deadline:
            return receipt
        time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
        delay = min(delay * 2, 2.0)
        with rt.read() as conn:
            receipt = receipts.load(conn, receipt.id)
