"""The who-read-what log's writer (audit/reads.py): a burst of reads is written in one
transaction after it, a flush writes at once, and nothing served is lost."""

from __future__ import annotations

import threading
from collections.abc import Iterator
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


def test_a_burst_of_reads_is_one_insert(
    mw: Memwarden, inserts: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A long interval, so the burst below certainly falls within it however slow the machine.
    monkeypatch.setattr(reads, "INTERVAL_S", 30.0)
    log = mw.reads
    for index in range(20):
        log.served([index + 1, index + 1000], "agent", None, "recall")
    assert log.flush(timeout=10)  # the flush ends the wait: no 30 s here
    assert len(inserts) == 1 and inserts[0] == 40
    assert _rows(mw) == [(i, "recall") for index in range(20) for i in (index + 1, index + 1000)]


def test_reads_are_written_without_a_flush(mw: Memwarden, inserts: list[int]) -> None:
    mw.reads.served([7], "agent", None, "get")
    written = threading.Event()

    def poll() -> None:
        while not _rows(mw):
            threading.Event().wait(0.02)
        written.set()

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    assert written.wait(10), "the interval passed and nothing was written"
    assert _rows(mw) == [(7, "get")] and inserts == [1]


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
    monkeypatch.setattr(reads, "MAX_BATCH", 5)
    monkeypatch.setattr(reads, "INTERVAL_S", 30.0)
    for index in range(12):
        mw.reads.served([index], "agent", None, "recall")
    assert mw.reads.flush(timeout=10)
    assert sum(inserts) == 12 and max(inserts) <= 5
    assert [memory for memory, _ in _rows(mw)] == list(range(12))
