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

Closing is final (``closing.close_all``): an attempt still in flight when the wait runs out is cut
short and recorded as such (a counted failure, as a timeout is: the delivery stays pending,
due after its backoff, for the next process; the budget and the dead letter work as ever),
and from then on the worker's thread never touches the database again, even if it outlives
the close: every database write of the thread happens under a gate that the close takes and
shuts, so a write in progress finishes before the close returns and any later one is refused.
A library host does not exit after closing a memwarden, and a closed memwarden must not write
(a schema being dropped, a file being copied, another test's database).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import structlog

from memwarden.db.store import Store
from memwarden.observability.alerts import formats, outbox
from memwarden.observability.alerts.targets import WebhookTarget
from memwarden.observability.alerts.transport import Cancel, Outcome, cut_short, post
from memwarden.observability.backoff import Backoff
from memwarden.observability.logs import safely

log = structlog.get_logger("memwarden.alerts")

TEST_FAILURES = 3  # counted failures before a test alert's delivery is given up
# Seconds close waits for a database write of a worker in progress: a small transaction, long
# only behind a lock, which SQLite's busy timeout (30 s by default) bounds.
WRITE_WAIT = 30.0


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
        self._cancel = Cancel()
        # Held around every database write of the thread; ``shut`` takes it and sets _closed.
        self._gate = threading.Lock()
        self._closed = False
        self._job: outbox.Job | None = None  # claimed and not yet recorded
        self._sent_at: float | None = None  # when its attempt began (monotonic)
        self._released = False
        self._releasing = threading.Lock()
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
            self._release()
        return not alive

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def cancel(self) -> None:
        """Cut the attempt in flight short (its connection is shut down)."""
        self._cancel.cancel()

    def shut(self) -> tuple[int | None, bool]:
        """Refuse every later database write of this worker. A claim still open is settled
        here: an attempt in flight is recorded as cut short (a counted failure: no answer
        within the time it had), a claim not yet sent is given back. Returns that delivery, and
        whether a write in progress outlasted the wait.

        Waits (``WRITE_WAIT`` at most) for a write in progress, so it is committed before this
        returns, never after."""
        self._closed = True  # no write starts after this one (checked under the gate)
        held = self._gate.acquire(timeout=WRITE_WAIT)
        settled: tuple[outbox.Job, Outcome, outbox.State] | None = None
        try:
            job, sent_at = self._job, self._sent_at
            self._job, self._sent_at = None, None
            if job is not None and held:
                try:
                    if sent_at is None:
                        outbox.release(self.store, job, _now())
                    else:
                        outcome = cut_short(time.monotonic() - sent_at)
                        settled = job, outcome, self._settle(job, outcome)
                except Exception as exc:  # noqa: BLE001 - fail-open: the lease runs out instead
                    safely(
                        log,
                        "error",
                        "alert_delivery_close_failed",
                        target=self.target.redacted,
                        delivery_id=job.notice.delivery_id,
                        error=str(exc).splitlines()[0] if str(exc) else repr(exc),
                    )
        finally:
            if held:
                self._gate.release()
        if settled is not None:
            self._give_up(*settled)
        return (job.notice.delivery_id if job is not None else None), not held

    def _release(self) -> None:
        """Close the HTTP client and stop scrubbing this webhook's URL: once, by whichever of
        the closer and the thread sees the thread end."""
        with self._releasing:
            if self._released:
                return
            self._released = True
        self._client.close()
        if self.target in _HTTPX_SCRUBBER.targets:
            _HTTPX_SCRUBBER.targets.remove(self.target)

    def _claim(self) -> outbox.Job | float | None:
        with self._gate:
            if self._closed:
                return None
            job = outbox.claim(self.store, self.target.key, _now(), self.policy.lease)
            if isinstance(job, outbox.Job):
                self._job = job
            return job

    def _run(self) -> None:
        try:
            self._loop()
        finally:
            # A thread that outlived its close cleans up after itself (its webhook URL stays
            # scrubbed from httpx's log lines until the last request is over).
            if self._closed:
                self._release()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.wake.clear()
            try:
                job = self._claim()
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
                with self._gate:  # not the close's to settle: its attempt is over
                    self._job, self._sent_at = None, None
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
        with self._gate:
            if self._closed:  # the close gave this claim back unsent: it stays unsent
                return Outcome("error", False, True, None, 0.0, "closed before it was sent")
            self._sent_at = time.monotonic()
        outcome = post(self._client, self.target, body, headers, self.policy.timeout, self._cancel)
        with self._gate:
            if self._closed:
                # The close recorded this attempt as cut short (``shut``): nothing is written
                # now. Had the answer just come, the delivery is sent again (its uid tells).
                safely(
                    log,
                    "info",
                    "alert_attempt_after_close",
                    target=self.target.redacted,
                    delivery_uid=notice.uid,
                    outcome=outcome.label,
                )
                return outcome
            state = self._settle(job, outcome)
        self._give_up(job, outcome, state)
        return outcome

    def _settle(self, job: outbox.Job, outcome: Outcome) -> outbox.State:
        """Record an attempt and the delivery's next step (under the gate)."""
        notice = job.notice
        number = job.attempts + 1
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
        self._log_attempt(state, outcome, round((due - at).total_seconds(), 3), fields)
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
        self._job, self._sent_at = None, None
        return state

    def _give_up(self, job: outbox.Job, outcome: Outcome, state: outbox.State) -> None:
        if state in ("failed", "dead") and self.on_give_up is not None:
            try:
                self.on_give_up(self.target, job, outcome, state)
            except Exception as exc:  # noqa: BLE001 - fail-open: the row says it all the same
                safely(log, "error", "alert_give_up_notice_failed", error=str(exc))

    @staticmethod
    def _log_attempt(state: str, outcome: Outcome, wait: float, fields: dict[str, Any]) -> None:
        if state == "delivered":
            safely(log, "info", "alert_delivered", **fields)
        elif state == "pending":
            safely(
                log, "warning", "alert_delivery_retry", error=outcome.error, retry_in=wait, **fields
            )
        else:
            safely(
                log, "error", "alert_delivery_failed", error=outcome.error, state=state, **fields
            )


def _now() -> datetime:
    return datetime.now(UTC)
