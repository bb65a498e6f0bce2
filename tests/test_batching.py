"""``audit.batching.Rounds``: one piece of work done for every thread that asked for it
before the round began, never for one that asked while it ran; a failed round is nobody's
answer but its leader's.

Each test holds a round open with an event, lines up the other threads behind it and then
lets it go, so what each round serves is known exactly.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Sequence

import pytest

from memwarden.audit import batching
from memwarden.audit.batching import Rounds


class Recorder:
    """The work: records what each call served; the first call waits for ``release``."""

    def __init__(self, results: Sequence[bool | Exception] = ()) -> None:
        self.calls: list[list[int]] = []
        self.started = threading.Event()
        self.release = threading.Event()
        self._results = list(results)
        self._lock = threading.Lock()

    def __call__(self, items: Sequence[int]) -> bool:
        with self._lock:
            self.calls.append(sorted(items))
            first = len(self.calls) == 1
            result = self._results.pop(0) if self._results else True
        if first:
            self.started.set()
            assert self.release.wait(10)
        if isinstance(result, Exception):
            raise result
        return result


def _start(
    rounds: Rounds[int], work: Recorder, item: int, out: dict[int, object]
) -> threading.Thread:
    def call() -> None:
        try:
            out[item] = rounds.run(item, work)
        except Exception as exc:  # noqa: BLE001 - the test looks at it
            out[item] = exc

    thread = threading.Thread(target=call, daemon=True)  # a stalled one must not hang the run
    thread.start()
    return thread


def _queued(rounds: Rounds[int], count: int) -> None:
    deadline = time.monotonic() + 10
    while len(rounds._waiting) < count:  # the callers in line behind the running round
        assert time.monotonic() < deadline, "the callers never lined up"
        time.sleep(0.001)


def _behind_a_running_round(
    rounds: Rounds[int], work: Recorder, items: Sequence[int]
) -> dict[int, object]:
    """Caller 1 starts a round and is held in it; ``items`` line up behind it; then all run
    to the end. Each caller's answer (or exception), by item."""
    out: dict[int, object] = {}
    first = _start(rounds, work, 1, out)
    assert work.started.wait(10)
    others = [_start(rounds, work, item, out) for item in items]
    _queued(rounds, len(items))
    work.release.set()
    for thread in [first, *others]:
        thread.join(10)
    return out


def test_callers_that_arrive_during_a_round_share_the_next_one() -> None:
    rounds: Rounds[int] = Rounds()
    work = Recorder()
    out = _behind_a_running_round(rounds, work, (2, 3, 4))
    # The round running when 2, 3 and 4 asked did not serve them: it began before they asked.
    assert work.calls == [[1], [2, 3, 4]]
    assert out == {1: True, 2: True, 3: True, 4: True}
    assert (rounds.rounds, rounds.served) == (2, 2)


def test_a_failed_round_leaves_each_follower_to_do_its_own_work() -> None:
    rounds: Rounds[int] = Rounds()
    work = Recorder([True, False, True])  # the round for 2 and 3 fails; its follower's own works
    out = _behind_a_running_round(rounds, work, (2, 3))
    assert work.calls[:2] == [[1], [2, 3]]
    # The follower did its own work once, alone; its outcome is its own.
    assert len(work.calls) == 3 and work.calls[2] in ([2], [3])
    follower = work.calls[2][0]
    leader = 5 - follower
    assert out[1] is True and out[leader] is False and out[follower] is True
    assert rounds.served == 0


def test_a_leader_that_raises_raises_alone() -> None:
    rounds: Rounds[int] = Rounds()
    work = Recorder([True, RuntimeError("flush failed")])
    out = _behind_a_running_round(rounds, work, (2, 3))
    assert work.calls[1] == [2, 3]
    errors = [item for item, result in out.items() if isinstance(result, RuntimeError)]
    assert len(errors) == 1  # the leader of the failed round; its follower retried alone
    assert work.calls[2] == [5 - errors[0]]
    assert out[5 - errors[0]] is True
    # Nothing is left running: the next caller leads at once.
    assert rounds.run(9, lambda items: list(items) == [9])


def test_every_answer_covers_what_the_caller_asked_before() -> None:
    """Under contention: a caller answered True was served by a round whose work saw a value
    at least its own (the witness's case: the newest head covers every older one)."""
    rounds: Rounds[int] = Rounds()
    lock = threading.Lock()
    done = [0]
    counter = [0]
    failures: list[str] = []

    def work(items: Sequence[int]) -> bool:
        time.sleep(0.0005)
        with lock:
            done[0] = max(done[0], *items)
        return True

    def caller() -> None:
        for _ in range(200):
            with lock:
                counter[0] += 1
                mine = counter[0]
            assert rounds.run(mine, work)
            with lock:
                if done[0] < mine:
                    failures.append(f"{mine} answered, work reached {done[0]}")

    threads = 8
    pool = [threading.Thread(target=caller) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join(60)
    assert failures == []
    assert rounds.served > 0 and rounds.rounds + rounds.served == threads * 200


def test_a_waiter_interrupted_in_line_does_not_stall_the_rounds() -> None:
    """The main thread waits in line behind a running round and a signal's exception
    (KeyboardInterrupt, here an alarm's) takes it out: the lead it would have been handed goes
    to the next in line, and later callers still get their rounds."""
    rounds: Rounds[int] = Rounds()
    work = Recorder()
    out: dict[int, object] = {}
    first = _start(rounds, work, 1, out)
    assert work.started.wait(10)

    class Interrupted(Exception):
        pass

    def interrupt(_signum: int, _frame: object) -> None:
        raise Interrupted

    previous = signal.signal(signal.SIGALRM, interrupt)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.2)
        with pytest.raises(Interrupted):
            rounds.run(2, work)  # in line behind round 1 (the main thread: signals land here)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    behind = _start(rounds, work, 3, out)
    _queued(rounds, 1)
    work.release.set()
    for thread in (first, behind):
        thread.join(10)
        assert not thread.is_alive(), "the rounds stalled"
    assert out == {1: True, 3: True}
    assert work.calls == [[1], [3]]
    assert rounds.run(4, lambda items: list(items) == [4])


def test_a_stuck_round_lets_its_followers_work_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    """A round that never ends (its leader's connection hangs) must not stall every other
    writer of the process: a follower waits ``FOLLOW_WAIT``, leaves the line and works alone,
    and the round, when it ends at last, starts no other for it."""
    monkeypatch.setattr(batching, "FOLLOW_WAIT", 0.2)
    rounds: Rounds[int] = Rounds()
    work = Recorder()
    out: dict[int, object] = {}
    first = _start(rounds, work, 1, out)
    assert work.started.wait(10)
    follower = _start(rounds, work, 2, out)
    follower.join(10)
    assert out == {2: True} and work.calls == [[1], [2]]  # done alone, the round still stuck
    assert rounds._waiting == []
    work.release.set()
    first.join(10)
    assert out == {1: True, 2: True} and work.calls == [[1], [2]]
    assert rounds.run(3, work) is True and work.calls[-1] == [3]  # rounds still run
