"""Delivery workers: one background thread per webhook, sending its outbox in order.

A worker claims the oldest due delivery of its webhook and drives the attempts with tenacity:
exponential backoff with jitter between attempts, or exactly the wait a 429 (or 503) asked
for, until it is delivered, fails for good (a 4xx other than 408/425/429), or has used
``attempts`` tries. Every attempt is recorded before the next one starts. One webhook at a
time per thread keeps a rate-limited channel's order and keeps a hanging receiver from
holding up the other webhooks.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import structlog
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_result,
    stop_after_attempt,
    wait_exponential_jitter,
)

from memwarden.db.store import Store
from memwarden.observability.alerts import formats, outbox
from memwarden.observability.alerts.targets import WebhookTarget
from memwarden.observability.alerts.transport import Outcome, post

log = structlog.get_logger("memwarden.alerts")


@dataclass(frozen=True)
class Policy:
    timeout: float = 8.0
    attempts: int = 5
    backoff: float = 1.0  # first wait, doubled each retry, plus up to as much jitter
    backoff_max: float = 300.0
    poll: float = 2.0  # how often an idle worker looks for work another process queued
    secret: str | None = None

    @property
    def lease(self) -> float:
        """How long a claimed delivery stays out of other workers' reach per attempt."""
        return self.timeout + 30.0


class _Stopping(Exception):
    """The worker was told to stop while waiting between attempts."""


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
    def __init__(self, store: Store, target: WebhookTarget, policy: Policy) -> None:
        self.store = store
        self.target = target
        _HTTPX_SCRUBBER.targets.append(target)
        self.policy = policy
        self.wake = threading.Event()
        self._stop = threading.Event()
        self._client = httpx.Client(follow_redirects=False)
        self._thread = threading.Thread(
            target=self._run, name=f"memwarden-alerts-{target.kind}", daemon=True
        )
        self._backoff = wait_exponential_jitter(
            multiplier=policy.backoff, max=policy.backoff_max, jitter=policy.backoff
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
                log.error("alert_outbox_claim_failed", target=self.target.redacted, error=str(exc))
                self._stop.wait(self.policy.poll)
                continue
            if job is None:
                self.wake.wait(self.policy.poll)
                continue
            try:
                self.deliver(job)
            except _Stopping:
                outbox.reschedule(self.store, job.notice.delivery_id, _now())
            except Exception as exc:  # noqa: BLE001 - fail-open: the lease runs out, it is retried
                log.error(
                    "alert_delivery_crashed",
                    target=self.target.redacted,
                    delivery_id=job.notice.delivery_id,
                    error=self.target.scrub(str(exc)),
                )

    def deliver(self, job: outbox.Job) -> Outcome:
        """Attempt one claimed delivery until it settles; returns the last outcome."""
        body = formats.body(self.target.kind, job.notice)
        remaining = max(1, self.policy.attempts - job.attempts)
        numbers = itertools.count(job.attempts + 1)
        retrying = Retrying(
            stop=stop_after_attempt(remaining),
            wait=self._wait,
            retry=retry_if_result(lambda o: not o.ok and o.retryable),
            sleep=self._sleep,
            before_sleep=lambda state: self._extend_lease(job, state),
            retry_error_callback=lambda state: state.outcome.result() if state.outcome else None,
        )
        outcome: Outcome = retrying(self._attempt, job, body, numbers)
        return outcome

    def _attempt(self, job: outbox.Job, body: bytes, numbers: Iterator[int]) -> Outcome:
        number = next(numbers)
        notice = job.notice
        headers = formats.headers(self.target.kind, notice, body, self.policy.secret)
        outcome = post(self._client, self.target, body, headers, self.policy.timeout)
        final = outcome.ok or not outcome.retryable or number >= self.policy.attempts
        state: outbox.State = "delivered" if outcome.ok else ("failed" if final else "pending")
        # Logged first: once the row says settled, a drain may end and the process exit.
        fields = {
            "target": self.target.redacted,
            "delivery_id": notice.delivery_id,
            "alert_id": notice.alert_id,
            "attempt": number,
            "status_code": outcome.status_code,
            "latency_ms": round(outcome.latency_ms, 1),
        }
        if outcome.ok:
            log.info("alert_delivered", **fields)
        elif final:
            log.error("alert_delivery_failed", error=outcome.error, **fields)
        else:
            log.warning("alert_delivery_retry", error=outcome.error, **fields)
        at = _now()
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
            at + timedelta(seconds=self.policy.lease),
        )
        return outcome

    def _wait(self, state: RetryCallState) -> float:
        outcome = state.outcome.result() if state.outcome and not state.outcome.failed else None
        if isinstance(outcome, Outcome) and outcome.retry_after is not None:
            return outcome.retry_after
        return float(self._backoff(state))

    def _extend_lease(self, job: outbox.Job, state: RetryCallState) -> None:
        until = _now() + timedelta(seconds=state.upcoming_sleep + self.policy.lease)
        outbox.reschedule(self.store, job.notice.delivery_id, until)

    def _sleep(self, seconds: float) -> None:
        if self._stop.wait(seconds):
            raise _Stopping()


def _now() -> datetime:
    return datetime.now(UTC)
