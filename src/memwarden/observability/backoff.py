"""Retrying on a time budget: when to try again, and when to give up.

A small policy any retrying sender can share (alert webhooks, checkpoint publishers): the
caller keeps its own state (how many counted failures, when its budget started) where it must
survive a restart (the alert outbox keeps it in ``alert_deliveries``), and asks this policy
for the next attempt's time. Waits grow exponentially with full jitter between half and all of
the step, capped; a server's ``Retry-After`` is honoured as asked (up to ``max_retry_after``);
nothing is scheduled past the budget's end, and once the end has passed the answer is None:
give up (dead-letter).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

Verdict = Literal["ok", "retry", "throttled", "permanent"]

# Answers that will not change by trying again: the target is misconfigured.
PERMANENT_STATUS = frozenset({400, 401, 403, 404, 405, 410, 413, 422})
# Answers that ask the sender to slow down: they never count as a failed attempt.
THROTTLE_STATUS = frozenset({429, 503})


def verdict(status: int | None) -> Verdict:
    """What an HTTP status (None: no answer at all) means for a retrying sender."""
    if status is None:
        return "retry"
    if 200 <= status < 300:
        return "ok"
    if status in THROTTLE_STATUS:
        return "throttled"
    if status in PERMANENT_STATUS or (400 <= status < 500 and status not in {408, 425}):
        return "permanent"
    return "retry"


@dataclass(frozen=True)
class Backoff:
    """``base`` the first wait (seconds), doubled per counted failure up to ``cap``;
    ``budget`` how long (seconds) one message may be retried before it is given up."""

    base: float = 1.0
    cap: float = 300.0
    budget: float = 24 * 3600.0
    max_retry_after: float = 300.0

    def delay(self, failures: int, rng: random.Random | None = None) -> float:
        """The wait after the ``failures``-th counted failure (1 = the first)."""
        step = min(self.cap, self.base * (2.0 ** max(0, min(failures, 64) - 1)))
        draw = (rng or random).random()
        return step * (0.5 + 0.5 * draw)

    def next_attempt(
        self,
        now: datetime,
        started: datetime,
        failures: int,
        retry_after: float | None = None,
        rng: random.Random | None = None,
    ) -> datetime | None:
        """When to try again, or None when the budget (from ``started``) is spent."""
        deadline = started + timedelta(seconds=self.budget)
        if now >= deadline:
            return None
        if retry_after is not None:
            wait = min(max(retry_after, 0.0), self.max_retry_after)
        else:
            wait = self.delay(max(failures, 1), rng)
        return min(now + timedelta(seconds=wait), deadline)
