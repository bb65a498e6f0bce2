"""Closing the delivery workers: when ``close_all`` returns, none of them writes again.

An attempt in flight (a hanging receiver) gets the close's wait to finish and be recorded as
usual; then each worker is shut (``TargetWorker.shut``: no database write of its thread starts
after it, one in progress is committed first, and the open claim is settled: recorded as cut
short), and only then is the attempt's connection cut, so the thread unwinds at once without
recording anything. A thread that still outlives the close ends on its own, without a write.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import structlog

from memwarden.observability.alerts.worker import WRITE_WAIT, TargetWorker
from memwarden.observability.logs import safely

log = structlog.get_logger("memwarden.alerts")

CANCEL_GRACE = 1.0  # seconds a cut-short attempt gets to unwind before close stops waiting


@dataclass(frozen=True)
class Closed:
    """How one worker's close went."""

    target: str  # the webhook, redacted
    ended: bool  # its thread ended (else it ends on its own, never touching the database)
    settled: int | None  # the delivery whose open claim the close settled (cut short)
    write_stuck: bool  # a database write of the worker outlasted WRITE_WAIT


def close_all(workers: list[TargetWorker], wait: float) -> list[Closed]:
    """Stop the workers: an attempt in flight gets ``wait`` seconds to finish (and be
    recorded), then is cut short and recorded as such. When this returns no worker
    thread writes to the database again. Each worker that did not end cleanly is logged."""
    for worker in workers:
        worker.stop()
    deadline = time.monotonic() + wait
    for worker in workers:
        worker.join(max(deadline - time.monotonic(), 0.0))
    shut = [worker.shut() for worker in workers]
    for worker in workers:
        if worker.alive:  # shut first: the attempt cut short can no longer be recorded
            worker.cancel()
    deadline = time.monotonic() + CANCEL_GRACE
    for worker in workers:
        worker.join(max(deadline - time.monotonic(), 0.0))
    report = [
        Closed(worker.target.redacted, not worker.alive, given, stuck)
        for worker, (given, stuck) in zip(workers, shut, strict=True)
    ]
    for closed in report:
        if closed.write_stuck:
            safely(
                log,
                "error",
                "alert_worker_close_write_stuck",
                target=closed.target,
                waited=WRITE_WAIT,
                note="a database write of the worker outlasted the close; no later one starts",
            )
        elif closed.settled is not None or not closed.ended:
            safely(
                log,
                "warning",
                "alert_worker_close_timeout",
                target=closed.target,
                timeout=wait,
                delivery_id=closed.settled,
                thread_ended=closed.ended,
                note="the attempt in flight was cut short and recorded; the delivery stays "
                "in the outbox for the next process, and this one writes no more",
            )
    return report
