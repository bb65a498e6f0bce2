"""``Alerts``: the fan-out of one process: log and file at once, the database and webhooks after.

``emit`` never raises and never waits for the network or the database: it logs, appends the
file line, and queues the alert for the writer thread, which commits it to the outbox (the
history, with throttling by fingerprint) and wakes the delivery workers. Without a store
(before a database exists) only the log and the file are written.

Each file line carries the alert's emit id and, with a store, the database's id: at start-up
the writer replays the lines of this database that never reached it (the process that wrote
them died before its writer committed them), so they are stored and delivered after all.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import structlog

from memwarden.config import Settings
from memwarden.db.store import Store
from memwarden.observability.alerts import giveup, model, outbox, recording, replay
from memwarden.observability.alerts import history as hist
from memwarden.observability.alerts.closing import close_all
from memwarden.observability.alerts.reading import AlertReads
from memwarden.observability.alerts.sinks import FileSink, log_record
from memwarden.observability.alerts.targets import WebhookTarget, parse_targets
from memwarden.observability.alerts.transport import MAX_RETRY_AFTER, Outcome
from memwarden.observability.alerts.worker import Policy, TargetWorker
from memwarden.observability.alerts.writer import Writer
from memwarden.observability.backoff import Backoff
from memwarden.observability.logs import safely

log = structlog.get_logger("memwarden.alerts")

TEST_TITLE = "memwarden test alert"
FLUSH_FLOOR = 2.0  # seconds a drain may take to commit queued alerts, whatever its timeout


def policy_from(settings: Settings) -> Policy:
    secret = settings.alert_webhook_secret
    return Policy(
        timeout=settings.alert_webhook_timeout,
        backoff=Backoff(
            base=settings.alert_webhook_backoff,
            cap=settings.alert_webhook_backoff_max,
            budget=settings.alert_webhook_budget,
            max_retry_after=MAX_RETRY_AFTER,
        ),
        max_failures=settings.alert_webhook_attempts,
        secret=secret.get_secret_value() if secret is not None else None,
    )


def _database_id(store: Store) -> str | None:
    try:
        return store.meta_value("database_id")
    except Exception as exc:  # noqa: BLE001 - fail-open: alerts work without it, unreplayed
        log.error(
            "alert_database_id_unreadable",
            error=str(exc).splitlines()[0] if str(exc) else repr(exc),
        )
        return None


class Alerts(AlertReads):
    def __init__(
        self,
        settings: Settings,
        store: Store | None = None,
        *,
        file_sink: bool = True,
        policy: Policy | None = None,
        start: bool = True,
    ) -> None:
        """Raises AlertConfigError for a malformed ``MEMWARDEN_ALERT_WEBHOOK`` (with a store)."""
        self.settings = settings
        self.store = store
        self.targets: list[WebhookTarget] = parse_targets(settings.alert_webhook) if store else []
        self.policy = policy or policy_from(settings)
        self.file = (
            FileSink(
                settings.resolved_alert_log,
                settings.alert_log_max_bytes,
                settings.alert_log_backups,
            )
            if file_sink
            else None
        )
        # Names this database in every file line, so a replay takes only its own alerts from
        # a file that several databases (or a process without one) may share.
        self.database_id = _database_id(store) if store is not None else None
        self.replayed: replay.Report | None = None  # once the start-up replay has run
        # Only alerts raised before now are replayed: this instance stores its own.
        self._started_at = datetime.now(UTC)
        replays = self.file is not None and self.database_id is not None
        self._writer = (
            Writer(
                store,
                self.targets,
                settings.alert_throttle_seconds,
                self._wake,
                self._replay if replays else None,
                self._stored,
                lambda alert: self._local("alert", self._record(alert)),
            )
            if store is not None
            else None
        )
        self.workers = (
            [TargetWorker(store, t, self.policy, self._gave_up) for t in self.targets]
            if store
            else []
        )
        # Set by the owner (``Memwarden``): mirrors the newest stored alert of each severity
        # into project state. Called on the writer thread; fail-open.
        self.mirror: Callable[[list[model.Alert]], None] | None = None
        self._mirroring = threading.local()
        self._closed = False
        self.sink_failures = 0
        if replays and self._writer is not None:
            self._writer.start()  # the replay runs on the writer thread, not in this start-up
        if start:
            for worker in self.workers:
                worker.start()

    # -- raising ---------------------------------------------------------------------------
    def emit(
        self,
        severity: str,
        title: str,
        message: str,
        context: dict[str, Any] | None = None,
        *,
        fingerprint_keys: tuple[str, ...] | list[str] = (),
        fingerprint: str | None = None,
    ) -> str:
        """Raise an alert; returns its fingerprint (for ``resolve``). Never raises."""
        return self._emit(severity, title, message, context, fingerprint_keys, fingerprint)

    def _emit(
        self,
        severity: str,
        title: str,
        message: str,
        context: dict[str, Any] | None,
        fingerprint_keys: tuple[str, ...] | list[str] = (),
        fingerprint: str | None = None,
        exclude: frozenset[str] = frozenset(),
    ) -> str:
        try:
            alert = model.build(
                severity,
                title,
                message,
                context,
                fingerprint_keys=fingerprint_keys,
                fingerprint_override=fingerprint,
            )
        except Exception as exc:  # noqa: BLE001 - an alert must never break its caller
            log.error("alert_build_failed", error_type=type(exc).__name__)
            return ""
        if alert.requested_severity is not None:
            self._guard(
                "log",
                lambda: log.warning(
                    "alert_severity_unknown",
                    requested=alert.requested_severity,
                    sent_as="info",
                    title=alert.title,
                ),
            )
        self._local("alert", self._record(alert))
        writer = self._writer
        if writer is not None:
            mirror = not getattr(self._mirroring, "active", False)
            item = outbox.Emit(alert, exclude=exclude, mirror=mirror)
            self._guard("store", lambda: writer.put(item))
        return alert.fingerprint

    def resolve(self, fingerprint: str) -> None:
        """The problem named ``fingerprint`` has cleared: its webhooks get a resolved notice."""
        fingerprint = model.clean_text(fingerprint)[:64]
        now = datetime.now(UTC)
        record: dict[str, Any] = {
            "ts": now.isoformat(),
            "event": replay.RESOLVED_EVENT,
            "severity": "info",
            "fingerprint": fingerprint,
            "pid": os.getpid(),
        }
        if self.database_id is not None:
            record["database_id"] = self.database_id  # a replay stores it if the database did not
        self._local(replay.RESOLVED_EVENT, record)
        writer = self._writer
        if writer is not None:
            item = outbox.Resolve(fingerprint, now)
            self._guard("store", lambda: writer.put(item))

    def _record(self, alert: model.Alert) -> dict[str, Any]:
        # "ts" comes first: a replay finds the start of a line after torn bytes by it.
        record = {
            "ts": alert.at.isoformat(),
            "event": "alert",
            "severity": alert.severity,
            "title": alert.title,
            "message": alert.message,
            "context": alert.context,
            "fingerprint": alert.fingerprint,
            "emit_id": alert.emit_id,
            "pid": os.getpid(),
        }
        if self.database_id is not None:
            record["database_id"] = self.database_id
        return record

    def _replay(self, write: replay.WriteBatch) -> None:
        """The start-up task of the writer thread (only with a file sink and a database id)."""
        assert self.file is not None and self.store is not None and self.database_id is not None
        self.replayed = replay.replay(
            self.store,
            self.file.path,
            self.file.backups,
            self.database_id,
            write,
            now=self._started_at,
        )

    def _local(self, event: str, record: dict[str, Any]) -> None:
        self._guard("log", lambda: log_record(event, record))
        if self.file is not None:
            file = self.file
            self._guard("file", lambda: file.write(record))

    def _guard(self, sink: str, action: Callable[[], object]) -> None:
        try:
            action()
        except Exception as exc:  # noqa: BLE001 - fail-open: one sink never stops the others
            self.sink_failures += 1
            try:
                path = str(self.file.path) if sink == "file" and self.file else None
                log.error("alert_sink_failed", sink=sink, path=path, error=str(exc))
            except Exception:  # noqa: BLE001 - the logger itself failed: nothing left to tell
                pass

    def _gave_up(
        self, target: WebhookTarget, job: outbox.Job, outcome: Outcome, state: outbox.State
    ) -> None:
        """A delivery was given up: say so through every other sink (never to ``target``)."""
        said = giveup.announcement(target, job, outcome, state, self.policy.backoff.budget)
        if said is not None:
            title, message, context = said
            self._emit(
                "critical",
                title,
                message,
                context,
                fingerprint_keys=("target_key",),
                exclude=frozenset({target.key}),
            )

    def _stored(self, alerts: list[model.Alert]) -> None:
        """The writer committed these alerts: mirror the newest of each severity (fail-open)."""
        mirror = self.mirror
        if mirror is None or not alerts:
            return
        newest = {alert.severity: alert for alert in alerts}
        self._mirroring.active = True  # an alert the mirror raises is not mirrored again
        try:
            mirror(list(newest.values()))
        except Exception as exc:  # noqa: BLE001 - fail-open like every sink
            self.sink_failures += 1
            error = (str(exc) or type(exc).__name__).splitlines()[0]
            safely(log, "error", "alert_sink_failed", sink="state", error=error)
        finally:
            self._mirroring.active = False

    def _wake(self, keys: set[str]) -> None:
        for worker in self.workers:
            if worker.target.key in keys:
                worker.wake.set()

    # -- waiting ---------------------------------------------------------------------------
    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until every alert emitted so far is committed to the outbox."""
        return self._writer.flush(timeout) if self._writer is not None else True

    def dropped(self) -> int:
        """Alerts this process dropped from the database (the writer's queue was full); each
        is in the log and the file, and a warning alert announces each episode."""
        return self._writer.dropped if self._writer is not None else 0

    def drain(self, timeout: float = 10.0, *, everything: bool = False) -> bool:
        """Wait (at most ``timeout`` s) until the webhook deliveries of the alerts this process
        raised are settled (delivered or given up); returns at once when it raised none.
        ``everything``: until no delivery to the configured webhooks is pending, whoever queued
        it. Never raises: what is still pending stays in the outbox for the next process."""
        deadline = time.monotonic() + timeout
        try:
            # Committing to the outbox is not waiting for a delivery: it takes milliseconds,
            # and a ``drain(0)`` must still leave the alert in the outbox for the next process.
            if not self.flush(max(timeout, FLUSH_FLOOR)):
                return False
            writer = self._writer
            if writer is None or self.store is None or not self.workers:
                return True
            while everything:
                if self.pending() == 0:
                    return True
                if time.monotonic() >= deadline:
                    return False
                time.sleep(0.05)
            while True:
                mine = writer.mine()
                if not mine:
                    return True
                with self.store.read() as conn:
                    pending = outbox.pending_among(conn, mine)
                writer.forget(set(mine) - pending)
                if not pending:
                    return True
                if time.monotonic() >= deadline:
                    return False
                time.sleep(0.05)
        except Exception as exc:  # noqa: BLE001 - draining is best effort; the outbox keeps it
            log.error(
                "alert_drain_failed", error=str(exc).splitlines()[0] if str(exc) else repr(exc)
            )
            return False

    def redeliver(self, ids: list[int] | None = None) -> list[int]:
        """Queue dead letters again (``ids``, or all) with a fresh budget; their ids."""
        if self.store is None:
            return []
        queued = outbox.redeliver(self.store, datetime.now(UTC), ids)
        for worker in self.workers:
            worker.wake.set()
        return queued

    def send_test(self, wait: float = 30.0) -> list[hist.DeliveryRecord]:
        """A test alert to every webhook, waited for (at most ``wait`` s); its deliveries."""
        if self.store is None or not self.targets:
            return []
        fingerprint = f"test-{uuid.uuid4().hex}"
        alert = model.build(
            "info",
            TEST_TITLE,
            f"A test alert from memwarden on {socket.gethostname()}: "
            "if you can read this, alerts reach this channel.",
            {"host": socket.gethostname(), "pid": os.getpid()},
            fingerprint_override=fingerprint,
        )
        self._local("alert", self._record(alert) | {"event": "alert_test"})
        with self.store.write() as unit:
            recorded = recording.record(unit.conn, [outbox.Emit(alert, "test")], self.targets, 0)
        self._wake(recorded.touched)
        deadline = time.monotonic() + wait
        while True:
            with self.store.read() as conn:
                rows = hist.list_alerts(conn, fingerprint=fingerprint, limit=1)
                found = hist.deliveries(conn, [rows[0].id]) if rows else []
            if all(d.state != "pending" for d in found) or time.monotonic() >= deadline:
                return found
            time.sleep(0.05)

    # -- closing ---------------------------------------------------------------------------
    def close(self, timeout: float = 5.0) -> None:
        """Commit what is queued (bounded), stop the workers; undelivered alerts stay queued
        in the outbox for the next process. Once this returns no thread of these alerts
        writes to the database (``closing.close_all``, ``Writer.close``)."""
        if self._closed:
            return
        self._closed = True
        writer = self._writer
        if writer is not None and not writer.close(timeout):
            # Not lost: they are in the alerts file, and the next start replays them.
            log.warning(
                "alert_writer_close_timeout",
                queued=writer.queued(),
                timeout=timeout,
                note="queued alerts are stored by the next start's replay of the alerts file",
            )
        # An attempt in flight (a hanging webhook) gets a second at most, then is cut short.
        close_all(self.workers, min(timeout, 1.0))
        if self.file is not None:
            self.file.close()
