"""The who-read-what log's writer (audit/reads.py): a burst of reads is written in one
transaction after it, a flush writes at once, and nothing served is lost."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from memwarden import Memwarden
from memwarden.audit import reads
from memwarden.db import schema


@pytest.fixture
def inserts(mw: Memwarden) -> Iterator[list[int]]:
    """The number of rows of each INSERT into memory_reads, as the engine runs them."""
    seen: list[int] = []

    def count(
        conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool
    ) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO MEMORY_READS"):
            seen.append(len(parameters) if many else 1)

    sa.event.listen(mw.store.engine, "before_cursor_execute", count)
    yield seen
    sa.event.remove(mw.store.engine, "before_cursor_execute", count)


def _rows(mw: Memwarden) -> list[tuple[int, str]]:
    r = schema.memory_reads
    with mw.store.read() as conn:
        return [
            (int(row.memory_id), row.operation)
            for row in conn.execute(sa.select(r.c.memory_id, r.c.operation).order_by(r.c.id))
        ]


def test_a_burst_of_reads_is_one_insert_after_the_first(
    mw: Memwarden, inserts: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first read after a quiet spell is written at once; the reads that follow it within
    the interval wait for its end, and go in one insert."""
    # A long interval, so the burst below certainly falls within it however slow the machine.
    monkeypatch.setattr(reads, "INTERVAL_S", 30.0)
    log = mw.reads
    log.served([1, 1000], "agent", None, "recall")
    _wait_for(lambda: len(_rows(mw)) == 2, "a read after a quiet spell was not written at once")
    for index in range(1, 20):
        log.served([index + 1, index + 1000], "agent", None, "recall")
    threading.Event().wait(0.5)
    assert len(_rows(mw)) == 2  # the others wait for the interval's end (30 s away)
    assert log.flush(timeout=10)  # the flush ends the wait: no 30 s here
    assert inserts == [2, 38]
    assert _rows(mw) == [(i, "recall") for index in range(20) for i in (index + 1, index + 1000)]


def _wait_for(condition: Callable[[], bool], failure: str) -> None:
    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline, failure
        threading.Event().wait(0.02)


def test_reads_are_written_without_a_flush(mw: Memwarden, inserts: list[int]) -> None:
    mw.reads.served([7], "agent", None, "get")
    _wait_for(lambda: bool(_rows(mw)), "the interval passed and nothing was written")
    assert _rows(mw) == [(7, "get")] and inserts == [1]
    mw.reads.served([8], "agent", None, "get")  # within the interval of the last write
    _wait_for(lambda: len(_rows(mw)) == 2, "the interval passed and the read was not written")
    assert inserts == [1, 1]


def test_reads_served_after_a_flush_and_at_close_are_kept(mw: Memwarden) -> None:
    log = mw.reads
    log.served([1], "agent", None, "recall")
    assert log.flush(timeout=10)
    log.served([2, 3], "agent", "k", "context")
    log.close(timeout=10)
    assert _rows(mw) == [(1, "recall"), (2, "context"), (3, "context")]


def test_a_batch_is_cut_at_its_size(
    mw: Memwarden, inserts: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reads, "MAX_ROWS", 5)
    monkeypatch.setattr(reads, "INTERVAL_S", 30.0)
    for index in range(12):
        mw.reads.served([2 * index, 2 * index + 1], "agent", None, "recall")
    assert mw.reads.flush(timeout=10)
    assert sum(inserts) == 24 and max(inserts) <= 6  # a recall's records are not split
    assert [memory for memory, _ in _rows(mw)] == list(range(24))
