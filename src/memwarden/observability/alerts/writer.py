"""The alert writer: a background thread that commits alerts to the outbox in batches.

``emit_alert`` only puts the alert on a bounded in-memory queue, so the caller never waits for
the database (or for its lock: an alert raised inside a write transaction, such as a ledger
failure on SQLite, would otherwise wait for itself). The writer commits the queue in batches,
lingering up to ``LINGER`` after the first alert so that a burst costs one short turn on the
interpreter rather than one per alert (``flush`` and ``close`` cut the linger short); the
delivery workers are woken once the rows are committed.

Before its first batch the writer runs its start-up task, if given: the replay of alerts the
alerts file holds but the database does not (``replay``), here rather than in the caller's
start-up so that opening a memwarden never waits for it (``flush`` does). It also forgets
old emit ids, then and about once an hour.

A full queue never makes the caller wait: the alert is dropped from the database (it is in
the log and the file already), counted, and the first drop of an episode is logged; once the
writer catches up, one warning alert says how many never reached the database, through every
sink. The thread never dies of an error (its log calls included): a dead writer would leave
every later alert out of the database and every ``flush`` failing, without a word.

A close that times out leaves the thread running, but never writing: its database work (the
start-up task, each batch and its mirror) runs under a gate that the close takes and shuts,
so a batch in progress is committed before ``close`` returns and nothing is written after.
What was still queued is in the alerts file, and the next start replays it.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

import structlog

from memwarden.db.store import Store
from memwarden.observability.alerts import model, outbox, recording, replay
from memwarden.observability.alerts.targets import WebhookTarget
from memwarden.observability.alerts.worker import WRITE_WAIT
from memwarden.observability.logs import safely

log = structlog.get_logger("memwarden.alerts")

QUEUE_SIZE = 10_000
BATCH = 500
LINGER = 0.05  # seconds a batch may wait for more alerts before it is committed
PRUNE_EVERY = 3600.0  # seconds between prunings of old emit ids


class _Marker:
    def __init__(self) -> None:
        self.done = threading.Event()


_STOP = object()


class Writer:
    def __init__(
        self,
        store: Store,
        targets: list[WebhookTarget],
        window: float,
        on_commit: Callable[[set[str]], None],
        startup: Callable[[replay.WriteBatch], object] | None = None,
        on_stored: Callable[[list[model.Alert]], None] | None = None,
        announce: Callable[[model.Alert], None] | None = None,
    ) -> None:
        self.store = store
        self.targets = targets
        self.window = window
        self.on_commit = on_commit
        self.on_stored = on_stored
        self.announce = announce  # the log and file lines of the writer's own alerts
        self.dropped = 0
        self._dropped_reported = 0
        self.failed = 0
        self._queue: queue.Queue[object] = queue.Queue(QUEUE_SIZE)
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._gate = threading.Lock()  # held around the thread's database work
        self._shut = False  # set under the gate by a close that timed out: no more writes
        self._mine: list[int] = []
        self._hurry = threading.Event()  # a flush or close is waiting: cut the linger short
        self._startup = startup
        self._pruned_at: float | None = None  # monotonic time of the last pruning

    def put(self, item: outbox.Item) -> bool:
        if self._closed:
            log.error("alert_writer_closed", dropped=type(item).__name__)
            return False
        thread = self._ensure_started()
        if not thread.is_alive():  # it was killed from outside (it never ends of an error)
            self._drop("alert_writer_dead")
            return False
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            # Never wait: the alert is already in the log and the file; the writer says how
            # many it missed (``_dropped_notice``) once it catches up.
            self._drop("alert_queue_full")
            return False
        return True

    def _drop(self, event: str) -> None:
        with self._lock:  # callers on many threads: no increment may be lost
            self.dropped += 1
            first = self.dropped - self._dropped_reported == 1
        if first:
            # Once per episode: a storm must not add a log line per alert to the caller's
            # cost; the notice after the episode carries the count.
            log.error(event, queue_size=QUEUE_SIZE)

    def flush(self, timeout: float) -> bool:
        """Wait until everything queued before this call is committed (or has failed)."""
        if self._thread is None or not self._thread.is_alive():
            return self._queue.empty()
        marker = _Marker()
        try:
            self._queue.put(marker, timeout=timeout)
        except queue.Full:
            return False
        self._hurry.set()
        return marker.done.wait(timeout)

    def close(self, timeout: float) -> bool:
        """Commit what is queued and stop (``timeout`` s at most); False when the time ran out,
        and then the thread writes nothing more once this returns."""
        self._closed = True
        thread = self._thread
        if thread is None or not thread.is_alive():
            return True
        try:
            self._queue.put(_STOP, timeout=timeout)
        except queue.Full:
            pass
        else:
            self._hurry.set()
            thread.join(timeout)
            if not thread.is_alive():
                return True
        self._shut = True  # no batch starts after this one
        held = self._gate.acquire(timeout=WRITE_WAIT)  # a batch in progress is committed first
        if held:
            self._gate.release()
        else:
            safely(log, "error", "alert_writer_close_write_stuck", waited=WRITE_WAIT)
        return False

    def start(self) -> None:
        """Start the thread now (it otherwise starts with the first alert): for the start-up
        task."""
        self._ensure_started()

    def _ensure_started(self) -> threading.Thread:
        thread = self._thread
        if thread is not None:
            return thread
        with self._lock:
            if self._thread is None:
                thread = threading.Thread(
                    target=self._run, name="memwarden-alert-writer", daemon=True
                )
                thread.start()
                self._thread = thread
            return self._thread

    def _run(self) -> None:
        with self._gate:
            if not self._shut:
                self._start_up()
                self._prune()
        stop = False
        while not stop:
            batch = [self._queue.get()]
            try:
                # Linger: let a burst gather into one batch instead of waking per alert, so
                # the writer takes the interpreter (and the callers' time) in a few short turns.
                self._hurry.wait(LINGER)
                self._hurry.clear()
                while len(batch) < BATCH:
                    try:
                        batch.append(self._queue.get_nowait())
                    except queue.Empty:
                        break
                with self._gate:
                    if self._shut:  # closed: the alerts file has them for the next start
                        continue
                    self._commit(batch)
            except Exception as exc:  # noqa: BLE001 - the thread must outlive any one batch
                safely(
                    log,
                    "error",
                    "alert_writer_batch_crashed",
                    items=len(batch),
                    error=_first_line(exc),
                )
            finally:
                # Always, or a flush would wait out its whole timeout for a marker never set.
                for entry in batch:
                    if isinstance(entry, _Marker):
                        entry.done.set()
                    elif entry is _STOP:
                        stop = True

    def _commit(self, batch: list[object]) -> None:
        items = [b for b in batch if isinstance(b, outbox.Emit | outbox.Resolve)]
        items.extend(self._dropped_notice())
        if items:
            self._write(items)
            self._prune()
            self._mirror(items)

    def _mirror(self, items: list[outbox.Item]) -> None:
        alerts = [
            i.alert for i in items if isinstance(i, outbox.Emit) and i.kind == "alert" and i.mirror
        ]
        if alerts and self.on_stored is not None:
            try:
                self.on_stored(alerts)
            except Exception as exc:  # noqa: BLE001 - fail-open: a mirror never stops the writer
                safely(log, "error", "alert_mirror_failed", error=_first_line(exc))

    def _dropped_notice(self) -> list[outbox.Item]:
        """A warning alert saying how many alerts never reached the database since the last."""
        with self._lock:
            dropped = self.dropped - self._dropped_reported
            if dropped <= 0:
                return []
            self._dropped_reported += dropped
        alert = model.build(
            "warning",
            "Alerts dropped: the alert queue was full",
            f"{dropped} alerts reached the log and the alerts file but not the database "
            "or the webhooks",
            {"dropped": dropped, "queue_size": QUEUE_SIZE},
        )
        if self.announce is not None:
            try:
                self.announce(alert)  # the log and the file, like every alert
            except Exception as exc:  # noqa: BLE001 - fail-open: the database still gets it
                safely(log, "error", "alert_notice_unlogged", error=_first_line(exc))
        return [outbox.Emit(alert)]

    def _start_up(self) -> None:
        if self._startup is None:
            return
        try:
            self._startup(self._write)
        except Exception as exc:  # noqa: BLE001 - fail-open: live alerts are committed anyway
            safely(log, "error", "alert_replay_failed", error=_first_line(exc))

    def _prune(self) -> None:
        now = time.monotonic()
        if self._pruned_at is not None and now - self._pruned_at < PRUNE_EVERY:
            return
        self._pruned_at = now
        try:
            pruned = replay.prune(self.store, datetime.now(UTC))
        except Exception as exc:  # noqa: BLE001 - fail-open: pruning is housekeeping
            safely(log, "warning", "alert_emit_prune_failed", error=_first_line(exc))
            return
        if pruned:
            safely(log, "debug", "alert_emits_pruned", pruned=pruned)

    def _write(self, items: list[outbox.Item]) -> tuple[int, int]:
        """Commit a batch; returns how many alerts were stored, and how many were skipped as
        stored already (the rest failed, and were logged)."""
        try:
            with self.store.write() as unit:
                recorded = recording.record(unit.conn, items, self.targets, self.window)
            touched = self._committed(recorded)
            stored, already = recorded.stored, recorded.duplicates
        except Exception as exc:  # noqa: BLE001 - fail-open; retried one by one below
            safely(
                log, "warning", "alert_batch_write_failed", items=len(items), error=_first_line(exc)
            )
            touched, stored, already = set(), 0, 0
            for item in items:
                one = self._write_one(item)
                if one is not None:
                    touched |= one.touched
                    stored, already = stored + one.stored, already + one.duplicates
        self._notify(touched)
        return stored, already

    def _write_one(self, item: outbox.Item) -> recording.Recorded | None:
        try:
            with self.store.write() as unit:
                recorded = recording.record(unit.conn, [item], self.targets, self.window)
            self._committed(recorded)
            return recorded
        except Exception as exc:  # noqa: BLE001 - fail-open: the log and the file still have it
            self.failed += 1
            what = item.alert.title if isinstance(item, outbox.Emit) else item.fingerprint
            safely(log, "error", "alert_store_failed", alert=what, error=_first_line(exc))
            return None

    def _committed(self, recorded: recording.Recorded) -> set[str]:
        with self._lock:
            self._mine.extend(recorded.delivery_ids)
        return recorded.touched

    def queued(self) -> int:
        """Alerts (and markers) waiting for the writer, about."""
        return self._queue.qsize()

    def mine(self) -> list[int]:
        """Ids of the deliveries this process queued that may still be pending."""
        with self._lock:
            return list(self._mine)

    def forget(self, settled: set[int]) -> None:
        with self._lock:
            self._mine = [i for i in self._mine if i not in settled]

    def _notify(self, touched: set[str]) -> None:
        if touched:
            try:
                self.on_commit(touched)
            except Exception as exc:  # noqa: BLE001 - the workers poll anyway
                safely(log, "error", "alert_worker_wake_failed", error=str(exc))


def _first_line(exc: BaseException) -> str:
    text = str(exc)
    return text.splitlines()[0] if text else type(exc).__name__
