"""Write failures of a background log (the operation log, the read records), logged once per
burst with a count instead of once per batch, and told to whoever watches (``on_failure``,
``on_recovered``: the domain makes each burst a fault episode, ``core/record_loss.py``)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import structlog

log = structlog.get_logger("memwarden.oplog")

REPORT_EVERY_S = 60.0
OnFailure = Callable[[BaseException, int], None]  # the error, rows lost so far in the burst
OnRecovered = Callable[[], None]


class BurstReporter:
    """A burst starts with a failure and ends with the next success (or the log's close).

    The first failure of a burst is logged at once (``<event>_failed``, ``oplog_write_failed``
    by default); later ones are counted, and logged again with their count only once
    ``every_s`` has passed. The end of a burst is logged with its totals
    (``<event>_burst_over``). Every failure is told to ``on_failure``, and every success to
    ``on_recovered`` (not the close: nothing recovered)."""

    def __init__(
        self,
        every_s: float = REPORT_EVERY_S,
        clock: Callable[[], float] = time.monotonic,
        *,
        event: str = "oplog_write",
    ) -> None:
        self.every_s = every_s
        self.clock = clock
        self.event = event
        self.on_failure: OnFailure | None = None
        self.on_recovered: OnRecovered | None = None
        self._lock = threading.Lock()
        self.in_burst = False
        self.burst_failures = 0
        self.burst_rows = 0
        self._unreported = 0
        self._last_report = 0.0

    def failure(self, exc: BaseException, rows: int) -> None:
        with self._lock:
            self.burst_failures += 1
            self.burst_rows += rows
            lost = self.burst_rows
            self._unreported += 1
            now = self.clock()
            quiet = self.in_burst and now - self._last_report < self.every_s
            if not quiet:
                self.in_burst = True
                self._last_report = now
                count, self._unreported = self._unreported, 0
        if self.on_failure is not None:
            self.on_failure(exc, lost)
        if quiet:
            return
        log.error(
            f"{self.event}_failed",
            error=str(exc)[:500],
            error_type=type(exc).__name__,
            count=count,
            rows_lost=rows,
            burst_failures=self.burst_failures,
            burst_rows_lost=self.burst_rows,
        )

    def success(self) -> None:
        if self.in_burst:
            self._end("recovered")
        # Every success, not only one that ends this reporter's burst: a fault raised by an
        # earlier reporter (a log reopened in the same process) ends with it too.
        if self.on_recovered is not None:
            self.on_recovered()

    def close(self) -> None:
        if self.in_burst:
            self._end("closed")

    def _end(self, how: str) -> None:
        with self._lock:
            failures, rows = self.burst_failures, self.burst_rows
            self.in_burst = False
            self.burst_failures = self.burst_rows = self._unreported = 0
        log.warning(f"{self.event}_burst_over", how=how, failures=failures, rows_lost=rows)
