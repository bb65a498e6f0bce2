"""The operation log: a bounded queue the callers put on, and one thread that writes batches.

``log()`` costs a size check and a ``SimpleQueue.put`` (no lock of ours, no condition
variable): the bound is checked with ``qsize()`` before the put, so concurrent producers can
overshoot it by at most one entry each. A full queue drops the entry and counts it.

The caller never wakes the writer for an entry: a wake-up per entry costs a thread switch and
a hand-over of the interpreter lock on the caller's path, which on a busy machine is
milliseconds. The writer wakes every ``interval_s`` instead (or when the queue reaches a
multiple of ``batch_size``, or for a flush), drains the queue in batches of ``batch_size``,
and inserts each batch in one transaction; normalising and encoding happen there, off the
caller's path. A failed write is counted, logged once per burst, and swallowed. ``close()``
(and, for logs still open, the interpreter's exit) flushes the queue within ``flush_timeout_s``.
"""

from __future__ import annotations

import atexit
import difflib
import os
import threading
import time
import weakref
from datetime import datetime
from queue import Empty, SimpleQueue
from typing import Any

import structlog
from sqlalchemy import insert

from memwarden.audit.actor import current_actor
from memwarden.audit.oplog import query, retention
from memwarden.audit.oplog.entry import OperationEntry
from memwarden.audit.oplog.facade import known_actions
from memwarden.audit.oplog.failures import BurstReporter
from memwarden.audit.oplog.rows import to_row
from memwarden.audit.oplog.timing import UNTIMED, Timed
from memwarden.audit.oplog.transport import current_transport
from memwarden.config import Settings
from memwarden.db import schema
from memwarden.db.store import Store

log = structlog.get_logger("memwarden.oplog")

BATCH_SIZE = 500
INTERVAL_S = 0.2


class _Flush:
    __slots__ = ("done",)

    def __init__(self) -> None:
        self.done = threading.Event()


_STOP = object()


def parse_actions(spec: str) -> tuple[frozenset[str], bool]:
    """``MEMWARDEN_OPLOG_ACTIONS``: a comma list of action names, or ``*`` for all of them."""
    names = frozenset(part.strip().lower() for part in spec.split(",") if part.strip())
    return names - {"*"}, "*" in names


def unknown_actions_message(unknown: frozenset[str]) -> str:
    """What a person reads about allowlisted names no operation has: each with the closest
    known name when there is one."""
    known = sorted(known_actions())
    names = []
    for name in sorted(unknown):
        close = difflib.get_close_matches(name, known, n=1)
        names.append(f"{name} (did you mean {close[0]}?)" if close else name)
    return (
        f"MEMWARDEN_OPLOG_ACTIONS names {len(names)} action(s) no operation has, which log "
        f"nothing: {', '.join(names)}. Known actions: {', '.join(known)}"
    )


def warn_unknown_actions(actions: frozenset[str]) -> frozenset[str]:
    """One warning (per log opened, i.e. at start-up) naming the allowlisted actions no logged
    operation has, ``recal`` for ``recall`` say: kept, and harmless, they log nothing."""
    known = known_actions()
    unknown = actions - known
    if unknown:
        log.warning(
            "oplog_unknown_actions",
            setting="MEMWARDEN_OPLOG_ACTIONS",
            unknown=sorted(unknown),
            known=sorted(known),
        )
    return unknown


class OpLog:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        *,
        queue_size: int | None = None,
        batch_size: int = BATCH_SIZE,
        interval_s: float = INTERVAL_S,
        flush_timeout_s: float | None = None,
    ) -> None:
        self.store = store
        self.actions, self.all_actions = parse_actions(settings.oplog_actions)
        # Kept for the faces to show (the CLI and `serve` print it; the log has it too).
        self.unknown_actions = warn_unknown_actions(self.actions)
        self.raw = settings.oplog_raw
        self.retention_days = settings.oplog_retention_days
        self.queue_size = queue_size if queue_size is not None else settings.oplog_queue_size
        self.batch_size = batch_size
        self.interval_s = interval_s
        self.flush_timeout_s = (
            flush_timeout_s if flush_timeout_s is not None else settings.oplog_flush_timeout_s
        )
        self.dropped = 0
        self.written = 0
        self.failed_rows = 0
        self._queue: SimpleQueue[Any] = SimpleQueue()
        self._thread: threading.Thread | None = None
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._closed = False
        self.failures = BurstReporter()
        _open_logs.add(self)

    # -- the caller's side -----------------------------------------------------------------
    @property
    def enabled(self) -> bool:
        return self.all_actions or bool(self.actions)

    def allows(self, action: str) -> bool:
        return self.all_actions or action in self.actions

    def log(self, entry: OperationEntry) -> bool:
        """Queue ``entry`` for the writer; False when it was dropped. Never blocks, never raises."""
        queue = self._queue
        size = queue.qsize()
        if size >= self.queue_size or self._closed:
            self._drop()
            return False
        if self._thread is None and not self._start():
            self._drop()
            return False
        queue.put(entry)
        if (size + 1) % self.batch_size == 0:  # a full batch waits: no need to wait the tick
            self._wake.set()
        return True

    def timed(
        self,
        action: str,
        transport: str | None = None,
        project: str | None = None,
        request: Any = None,
    ) -> Timed:
        """``with oplog.timed("recall", project=p, request=r) as op: ...; op.response = hits``.

        Logs the duration, and the exception's type if the block raised (the exception itself
        goes on untouched). An action the allowlist leaves out costs one set lookup."""
        if not (self.all_actions or action in self.actions):
            return UNTIMED
        return Timed(
            self, action, transport or current_transport(), project, request, current_actor()
        )

    def counters(self) -> dict[str, int]:
        return {
            "queued": self._queue.qsize(),
            "written": self.written,
            "dropped": self.dropped,
            "failed": self.failed_rows,
        }

    def _drop(self) -> None:
        with self._lock:
            self.dropped += 1

    def _start(self) -> bool:
        """Start the writer (once); False when it cannot run (closed, or no thread to be had)."""
        with self._lock:
            if self._thread is not None:
                return True
            if self._closed:
                return False
            thread = threading.Thread(target=self._run, name="memwarden-oplog", daemon=True)
            try:
                thread.start()
            except RuntimeError as exc:  # e.g. at interpreter shutdown: the entry is dropped
                log.warning("oplog_writer_not_started", error=str(exc))
                return False
            self._thread = thread
            return True

    # -- shutting down ---------------------------------------------------------------------
    def flush(self, timeout: float | None = None) -> bool:
        """Wait (at most ``timeout`` seconds) until everything queued so far is written."""
        thread = self._thread
        if thread is None or not thread.is_alive():
            return self._queue.empty()
        marker = _Flush()
        self._queue.put(marker)
        self._wake.set()
        return marker.done.wait(self.flush_timeout_s if timeout is None else timeout)

    def close(self, timeout: float | None = None) -> bool:
        """Flush within ``timeout`` (default ``flush_timeout_s``) and stop the writer.

        Returns False when the bound ran out first: what was still queued is lost, and said so."""
        with self._lock:
            if self._closed:
                return True
            self._closed = True
        _open_logs.discard(self)
        thread = self._thread
        if thread is None:
            return True
        bound = self.flush_timeout_s if timeout is None else timeout
        self._queue.put(_STOP)
        self._wake.set()
        thread.join(bound)
        if thread.is_alive():
            log.warning(
                "oplog_flush_timeout", timeout_s=bound, pending=max(0, self._queue.qsize() - 1)
            )
            return False
        self.failures.close()
        leftover = 0
        while True:  # entries that raced in after the stop marker
            try:
                item = self._queue.get_nowait()
            except Empty:
                break
            leftover += isinstance(item, OperationEntry)
        self.dropped += leftover
        return True

    # -- the writer's side -----------------------------------------------------------------
    def _run(self) -> None:
        while True:
            self._wake.wait(self.interval_s)
            self._wake.clear()
            if self._drain():
                return

    def _drain(self) -> bool:
        """Write everything queued, in batches, serving flush markers in order; True on stop."""
        queue = self._queue
        batch: list[OperationEntry] = []
        while True:
            try:
                item = queue.get_nowait()
            except Empty:
                break
            if isinstance(item, OperationEntry):
                batch.append(item)
                if len(batch) >= self.batch_size:
                    self._write(batch)
                    batch = []
                continue
            if batch:
                self._write(batch)
                batch = []
            if isinstance(item, _Flush):
                item.done.set()
            else:  # stop
                return True
        if batch:
            self._write(batch)
        return False

    def _write(self, batch: list[OperationEntry]) -> None:
        rows = []
        for entry in batch:
            try:
                rows.append(to_row(entry, raw=self.raw))
            except Exception as exc:  # noqa: BLE001 - one bad entry never costs the batch
                self.failed_rows += 1
                self.failures.failure(exc, 1)
        # A batch that lost an entry is no recovery, even when the rest is written: the
        # episode would end (and alert again) in every batch that holds such an entry.
        whole = len(rows) == len(batch)
        if not rows:
            return
        try:
            with self.store.write() as unit:
                unit.conn.execute(insert(schema.operation_log), rows)
        except Exception as exc:  # noqa: BLE001 - fail-open: a lost row never fails an operation
            self.failed_rows += len(rows)
            self.failures.failure(exc, len(rows))
        else:
            self.written += len(rows)
            if whole:
                self.failures.success()

    # -- reading and retention -------------------------------------------------------------
    def recent(self, **filters: Any) -> list[query.LoggedOperation]:
        with self.store.read() as conn:
            return query.list_operations(conn, **filters)

    def stats(self, since: datetime | None = None) -> list[query.ActionStats]:
        with self.store.read() as conn:
            return query.stats(conn, since=since)

    def sweep(
        self, days: int | None = None, *, batch_size: int = retention.BATCH_SIZE
    ) -> retention.SweepResult | None:
        """Delete rows older than ``days`` (default: the retention setting); None when off."""
        days = self.retention_days if days is None else days
        if days < 0:
            return None
        return retention.sweep(self.store, days, batch_size=batch_size)


# Logs still open when the interpreter exits are flushed, within one shared bound.
_open_logs: weakref.WeakSet[OpLog] = weakref.WeakSet()


def _close_all() -> None:
    logs = list(_open_logs)
    if not logs:
        return
    deadline = time.monotonic() + max(item.flush_timeout_s for item in logs)
    for item in logs:
        item.close(max(0.0, deadline - time.monotonic()))


def _after_fork() -> None:
    # The writer thread does not survive a fork: a child starts its own on first use.
    for item in list(_open_logs):
        item._queue = SimpleQueue()
        item._thread = None
        item._wake = threading.Event()
        item._lock = threading.Lock()


atexit.register(_close_all)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)
