"""Delivery workers: one background thread per webhook, sending its outbox in order.

A worker claims the oldest pending delivery of its webhook once it is due, makes one attempt,
and records the attempt and the delivery's next step in the outbox before anything else:

- delivered: done;
- a permanent answer (400, 401, 403, 404, 410, …): ``failed`` at once, and a misconfiguration
  alert goes out through the other sinks (``on_give_up``), naming the webhook without its secret;
- a 429 or 503: due again after exactly the ``Retry-After`` asked for (or the current backoff
  step), and the attempt does not count as a failure;
- anything else (refused, timed out, 5xx): one more counted failure, due again after an
  exponential backoff with jitter, capped (``memwarden.observability.backoff``);
- past the delivery's time budget (24 h by default), or past ``max_failures`` counted failures
  when set: ``dead``, and a critical alert goes out through the other sinks.

Because the backoff lives in the row, a restart or another process taking over continues it.
One webhook at a time per thread keeps a rate-limited channel's order and keeps a hanging
receiver from holding up the other webhooks.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx
import structlog

from memwarden.db.store import Store
from memwarden.observability.alerts import formats, outbox
from memwarden.observability.alerts.targets import WebhookTarget
from memwarden.observability.alerts.transport import Outcome, post
from memwarden.observability.backoff import Backoff
from memwarden.observability.logs import safely

log = structlog.get_logger("memwarden.alerts")

TEST_FAILURES = 3  # counted failures before a test alert's delivery is given up


@dataclass(frozen=True)
class Policy:
    timeout: float = 8.0
    backoff: Backoff = field(default_factory=Backoff)
    max_failures: int | None = None  # counted failures before a dead letter (None: budget only)
    poll: float = 2.0  # how often an idle worker looks for work another process queued
    secret: str | None = None
    lease_margin: float = 30.0  # beyond the timeout: how long a dead process's claim holds

    @property
    def lease(self) -> float:
        """How long a claimed delivery stays out of other workers' reach per attempt."""
        return self.timeout + self.lease_margin


# What a worker reports when it gives a delivery up: the job, the last outcome, the new state.
GiveUp = Callable[[WebhookTarget, outbox.Job, Outcome, outbox.State], None]


class _ScrubWebhookUrls(logging.Filter):
    """httpx logs every request's full URL at INFO; a webhook URL is a secret."""

    def __init__(self) -> None:
        super().__init__()
        self.targets: list[WebhookTarget] = []  # one entry per live worker

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        scrubbed = message
        for target in list(self.targets):
            scrubbed = target.scrub(scrubbed)
        if scrubbed != message:
            record.msg, record.args = scrubbed, ()
        return True


_HTTPX_SCRUBBER = _ScrubWebhookUrls()
logging.getLogger("httpx").addFilter(_HTTPX_SCRUBBER)


class TargetWorker:
    def __init__(
        self,
        store: Store,
        target: WebhookTarget,
        policy: Policy,
        on_give_up: GiveUp | None = None,
    ) -> None:
        self.store = store
        self.target = target
        _HTTPX_SCRUBBER.targets.append(target)
        self.policy = policy
        self.on_give_up = on_give_up
        self.wake = threading.Event()
        self._stop = threading.Event()
        self._client = httpx.Client(follow_redirects=False)
        self._thread = threading.Thread(
            target=self._run, name=f"memwarden-alerts-{target.kind}", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self.wake.set()

    def join(self, timeout: float) -> bool:
        if self._thread.is_alive():
            self._thread.join(timeout)
        alive = self._thread.is_alive()
        if not alive:
            self._client.close()
            if self.target in _HTTPX_SCRUBBER.targets:
                _HTTPX_SCRUBBER.targets.remove(self.target)
        return not alive

    def _run(self) -> None:
        while not self._stop.is_set():
            self.wake.clear()
            try:
                job = outbox.claim(self.store, self.target.key, _now(), self.policy.lease)
            except Exception as exc:  # noqa: BLE001 - fail-open: the outbox keeps the work
                safely(
                    log,
                    "error",
                    "alert_outbox_claim_failed",
                    target=self.target.redacted,
                    error=str(exc),
                )
                self._stop.wait(self.policy.poll)
                continue
            if not isinstance(job, outbox.Job):
                # Nothing pending, or the head is not due yet: sleep until it is (or until new
                # work is committed; the poll notices work queued by another process).
                wait = self.policy.poll if job is None else min(job, self.policy.poll)
                self.wake.wait(max(wait, 0.01))
                continue
            try:
                self.deliver(job)
            except Exception as exc:  # noqa: BLE001 - fail-open: the lease runs out, it is retried
                safely(
                    log,
                    "error",
                    "alert_delivery_crashed",
                    target=self.target.redacted,
                    delivery_id=job.notice.delivery_id,
                    error=self.target.scrub(str(exc)),
                )
                self._stop.wait(self.policy.poll)

    def deliver(self, job: outbox.Job) -> Outcome:
        """One attempt at a claimed delivery; the outbox row says what comes next."""
        notice = job.notice
        body = formats.body(self.target.kind, notice)
        headers = formats.headers(self.target.kind, notice, body, self.policy.secret)
        number = job.attempts + 1
        outcome = post(self._client, self.target, body, headers, self.policy.timeout)
        at = _now()
        failures = job.failures if outcome.ok or outcome.throttled else job.failures + 1
        state: outbox.State
        due = at
        if outcome.ok:
            state = "delivered"
        elif outcome.permanent:
            state = "failed"
        else:
            cap = self.policy.max_failures
            if notice.kind == "test":  # a test answers the one waiting for it: no 24 h of retries
                cap = min(cap or TEST_FAILURES, TEST_FAILURES)
            step = max(failures, 1)
            following = (
                None
                if cap is not None and failures >= cap
                else self.policy.backoff.next_attempt(
                    at, job.budget_from, step, outcome.retry_after
                )
            )
            state = "dead" if following is None else "pending"
            due = following or at
        fields = {
            "target": self.target.redacted,
            "delivery_id": notice.delivery_id,
            "delivery_uid": notice.uid,
            "alert_id": notice.alert_id,
            "attempt": number,
            "status_code": outcome.status_code,
            "latency_ms": round(outcome.latency_ms, 1),
        }
        # Logged first: once the row says settled, a drain may end and the process exit. A log
        # that raises must not keep the attempt from being recorded (``safely``).
        if state == "delivered":
            safely(log, "info", "alert_delivered", **fields)
        elif state == "pending":
            wait = round((due - at).total_seconds(), 3)
            safely(
                log, "warning", "alert_delivery_retry", error=outcome.error, retry_in=wait, **fields
            )
        else:
            safely(
                log, "error", "alert_delivery_failed", error=outcome.error, state=state, **fields
            )
        outbox.record_attempt(
            self.store,
            notice.delivery_id,
            number,
            at,
            outcome.status_code,
            outcome.latency_ms,
            outcome.label,
            outcome.error,
            state,
            due if state == "pending" else at,
            failures,
        )
        if state in ("failed", "dead") and self.on_give_up is not None:
            try:
                self.on_give_up(self.target, job, outcome, state)
            except Exception as exc:  # noqa: BLE001 - fail-open: the row says it all the same
                safely(log, "error", "alert_give_up_notice_failed", error=str(exc))
        return outcome


def _now() -> datetime:
    return datetime.now(UTC)
