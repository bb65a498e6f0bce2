"""One piece of work done for every thread that asked for it while the last one ran.

Threads of one process that each need the same idempotent step after their commit (wait for
the WAL flush, write the witness) take turns as a leader and its followers, as a database
merges concurrent commits into one flush: a caller that finds no round running leads one,
doing the work once for itself and for every caller that arrived before it started; callers
that arrive while a round runs wait for its end and are served by the next one. A caller is
answered only by a round that *began after it arrived* (so the round's work covers what the
caller had done before asking) and that succeeded. When that round failed, each of its
followers does the work for itself alone, exactly as it would have without batching: a
failure is never shared, and its error, if any, is the follower's own.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")

# Seconds a follower waits for a round before doing its work alone (the work is idempotent).
FOLLOW_WAIT = 5.0


class _Request(Generic[T]):
    __slots__ = ("item", "served", "wake")

    def __init__(self, item: T) -> None:
        self.item = item
        self.served: bool | None = None  # the outcome of the round that took it
        self.wake = threading.Lock()  # released once: served, or handed the lead
        self.wake.acquire()


class Rounds(Generic[T]):
    """``run(item, work)``: ``work`` gets the items of every request the round serves (its own
    among them) and returns whether it succeeded; it may raise, which only its caller sees.

    Each waiter sleeps on a lock of its own and is woken once: by the end of the round that
    served it, or, the first in line, to lead the next round (the lead is handed over, so no
    round starts while another runs). A wake-up for every waiter at every round's end would
    cost more thread switches than the rounds save."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiting: list[_Request[T]] = []
        self._running = False
        self._next: _Request[T] | None = None  # handed the lead, not yet taken it
        self.rounds = 0  # rounds led (for tests and profiles)
        self.served = 0  # requests answered by a round they did not lead

    def run(self, item: T, work: Callable[[Sequence[T]], bool]) -> bool:
        request = _Request(item)
        with self._lock:
            leading = not self._running
            if leading:
                self._running = True
            else:
                self._waiting.append(request)
        if leading:
            batch = [request]
        else:
            try:
                woken = request.wake.acquire(timeout=FOLLOW_WAIT)
            except BaseException:
                self._abandon(request)  # a signal's exception (KeyboardInterrupt) while waiting
                raise
            if not woken:
                # The round is stuck (its leader's connection hangs, say): leave the line and
                # do the work alone on this thread's own connection, as without batching.
                self._abandon(request)
                return True if request.served is True else work([item])
            if request.served is True:
                return True
            if request.served is False:
                return work([item])  # the round failed: on its own, as without batching
            with self._lock:  # handed the lead: serve everyone in line, itself first
                batch, self._waiting = self._waiting, []
                self._next = None
        return self._lead(request, batch, work)

    def _lead(
        self, request: _Request[T], batch: list[_Request[T]], work: Callable[[Sequence[T]], bool]
    ) -> bool:
        ok = False
        try:
            ok = work([r.item for r in batch])
        finally:
            with self._lock:
                self.rounds += 1
                self.served += len(batch) - 1 if ok else 0
                successor = self._waiting[0] if self._waiting else None
                self._running = successor is not None
                self._next = successor
            for waiter in batch:
                if waiter is not request:
                    waiter.served = ok
                    waiter.wake.release()
            if successor is not None:
                successor.wake.release()
        return ok

    def _abandon(self, request: _Request[T]) -> None:
        """A waiter leaves without its answer: out of the line, and if the lead was just handed
        to it, on to the next in line (or no round runs): otherwise no round would ever run
        again."""
        with self._lock:
            if request in self._waiting:
                self._waiting.remove(request)
            successor = None
            if self._next is request:
                successor = self._waiting[0] if self._waiting else None
                self._next = successor
                self._running = successor is not None
        if successor is not None:
            successor.wake.release()
