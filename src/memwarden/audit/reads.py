"""Who was served which memory: one row per memory that recall, a context pack or ``get``
handed to a key or actor, with the ledger seq of the version served.

Like the operation log it is off the caller's path: ``served()`` puts one tuple on a queue; a
writer thread inserts them in batches, one transaction at most every ``INTERVAL_S`` while
reads keep coming and at once after a quiet spell (``flush()`` writes at once:
``Memwarden.readers`` flushes before it reads; another process's reads, such as another
``serve`` worker's, show there up to ``INTERVAL_S`` later, and a process killed outright loses
up to that much of its records).
The version is resolved when someone asks (``readers``), from the append-only ledger.
A full queue drops the record and counts it; a failed write is counted, logged once per
burst, and told to ``failures``' watchers (the domain makes it a fault episode: an alert, and
``/health``), never to the reader, whose answer does not wait on it. ``sweep()`` deletes rows
older than ``MEMWARDEN_READS_RETENTION_DAYS``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from queue import Empty, SimpleQueue
from typing import Any

import structlog
from sqlalchemy import delete, insert, select

from memwarden.audit.chain import format_ts
from memwarden.audit.oplog.failures import BurstReporter
from memwarden.db import schema
from memwarden.db.store import Store

log = structlog.get_logger("memwarden.reads")

INTERVAL_S = 0.2
MAX_QUEUE = 100_000
MAX_ROWS = 5_000  # memories served, per transaction
R, L = schema.memory_reads, schema.ledger


@dataclass(frozen=True)
class Served:
    memory_id: int
    seq: int | None
    actor: str
    key_name: str | None
    operation: str
    served_at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "served_at": self.served_at.isoformat()}


_Item = tuple[tuple[int, ...], str, str | None, str, datetime]


class ReadLog:
    def __init__(self, store: Store, retention_days: int) -> None:
        self.store = store
        self.retention_days = retention_days
        # None: the writer stops (``close``).
        self._queue: SimpleQueue[_Item | threading.Event | None] = SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._closed = False
        self.enabled = True  # the benchmark compares recall with it off
        self.dropped = 0
        self.failed = 0
        self.failures = BurstReporter(event="reads_write")

    def served(
        self, memory_ids: Sequence[int], actor: str, key_name: str | None, operation: str
    ) -> None:
        """Record that these memories were just served (never blocks, never raises). Dropped,
        and counted, when the queue is full, the log closed, or no thread can be started."""
        if not memory_ids or not self.enabled:
            return
        item = (tuple(memory_ids), actor, key_name, operation, datetime.now(UTC))
        with self._lock:  # against ``close``: nothing is queued behind its stop marker
            if self._closed or self._queue.qsize() >= MAX_QUEUE or not self._started():
                self.dropped += 1
                return
            self._queue.put(item)

    def _started(self) -> bool:
        """Under the lock: the writer thread runs (started now if need be)."""
        if self._thread is not None:
            return True
        thread = threading.Thread(target=self._run, name="memwarden-reads", daemon=True)
        try:
            thread.start()
        except RuntimeError as exc:  # at interpreter shutdown, say: the next read tries again
            log.warning("reads_writer_not_started", error=str(exc))
            return False
        self._thread = thread
        return True

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait (``timeout`` s at most) until what was served so far is written or given up."""
        done = threading.Event()
        with self._lock:
            thread = self._thread
            if thread is None or not thread.is_alive():
                return True
            if self._closed:
                return False  # its writer is stopping, still at work: nothing is waited for
            self._queue.put(done)
        return done.wait(timeout)

    def close(self, timeout: float = 5.0) -> None:
        """Write what is queued (``timeout`` s at most), then stop the writer thread. A read
        served after this is dropped and counted; what the writer still holds when the store
        closes under it is counted as failed."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            thread = self._thread
            if thread is not None:
                self._queue.put(None)  # behind everything queued: written first
        if thread is None:
            return
        thread.join(timeout)
        if thread.is_alive():
            log.warning("reads_close_timeout", timeout_s=timeout, queued=self._queue.qsize())

    def _run(self) -> None:
        last_write = float("-inf")  # the first read is written at once
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch, waiting, stop = self._collect(first, last_write + INTERVAL_S)
            if batch:
                self._write(batch)
                last_write = time.monotonic()
            for event in waiting:
                event.set()
            if stop:
                return

    def _collect(
        self, first: _Item | threading.Event, until: float
    ) -> tuple[list[_Item], list[threading.Event], bool]:
        """``first`` and what arrives with it, as one batch: written at once after a quiet
        spell, else at ``until`` (``INTERVAL_S`` after the last write). So a burst of recalls
        costs one transaction (and one commit's flush) per interval, written beside them
        rather than between each two, and a lone read waits for nothing. A flush marker ends
        the wait at once; the stop marker (None) ends the batch, and the writer after it."""
        batch: list[_Item] = []
        waiting: list[threading.Event] = []
        rows = 0
        item: _Item | threading.Event | None = first
        while True:
            if item is None:
                return batch, waiting, True
            if isinstance(item, threading.Event):
                waiting.append(item)
            else:
                batch.append(item)
                rows += len(item[0])
            if rows >= MAX_ROWS:
                return batch, waiting, False
            try:
                # After a flush marker, only what is already queued joins the batch.
                left = 0.0 if waiting else until - time.monotonic()
                item = self._queue.get(timeout=left) if left > 0 else self._queue.get_nowait()
            except Empty:
                return batch, waiting, False

    def _write(self, batch: list[_Item]) -> None:
        try:
            with self.store.write() as unit:
                rows = [
                    {
                        "memory_id": memory_id,
                        "actor": actor,
                        "key_name": key_name,
                        "operation": operation,
                        "served_at": served_at,
                    }
                    for ids, actor, key_name, operation, served_at in batch
                    for memory_id in ids
                ]
                unit.conn.execute(insert(R), rows)
        except Exception as exc:  # noqa: BLE001 - fail-open: a reader never pays for this record
            self.failed += len(batch)
            self.failures.failure(exc, len(batch))
        else:
            self.failures.success()

    def readers(self, memory_id: int, limit: int = 200) -> list[Served]:
        query = select(R).where(R.c.memory_id == memory_id).order_by(R.c.id.desc()).limit(limit)
        with self.store.read() as conn:
            found = list(conn.execute(query))
            # The version served: the memory's last ledger row at or before the moment (the
            # ledger is append-only, so the answer never changes): resolved here, not on the
            # reader's path.
            stamps = conn.execute(
                select(L.c.seq, L.c.ts)
                .where(L.c.entity_type == "memory", L.c.entity_id == str(memory_id))
                .order_by(L.c.seq)
            ).all()
        return [
            Served(
                int(row.memory_id),
                _version(stamps, row.served_at),
                row.actor,
                row.key_name,
                row.operation,
                row.served_at,
            )
            for row in found
        ]

    def sweep(self, days: int | None = None) -> int:
        """Delete rows older than ``days`` (default: the retention setting)."""
        cutoff = datetime.now(UTC) - timedelta(days=self.retention_days if days is None else days)
        with self.store.write() as unit:
            return int(unit.conn.execute(delete(R).where(R.c.served_at < cutoff)).rowcount or 0)


def _version(stamps: Sequence[Any], served_at: datetime) -> int | None:
    moment = format_ts(served_at)
    seq = None
    for row in stamps:  # in seq order
        if row.ts <= moment:
            seq = int(row.seq)
    return seq
