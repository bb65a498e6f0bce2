"""A verify worker streams its part's rows on PostgreSQL (``fetch_pg.streamed_batches``): the
server sends them without being asked for each batch. Stopped early, at the first row the fast
path does not accept, the stream is cancelled; the worker's transaction must go on in the
snapshot it had, for the full walk that follows. PostgreSQL only; the queries are real."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from ledger_support import head_seq, row_at, whole_chain_job
from memwarden import Memwarden
from memwarden.audit import fetch_pg, parallel, verify_worker
from memwarden.audit.fastpath import BATCH
from memwarden.audit.fetch import DriverQuery, cursor_batches

pytestmark = [
    pytest.mark.parametrize("engine_name", ["postgresql"], indirect=True),
    pytest.mark.skipif(not fetch_pg.streams(), reason="streaming needs libpq 17"),
]

# More rows than the server could send before it is stopped (~100 GB): a stream that was not
# cancelled would never end, and the test's own clock below would fail it first.
ENDLESS = DriverQuery("SELECT g, repeat('x', 1000) FROM generate_series(1, 100000000) AS g", None)
STOP_WITHIN_S = 30.0


@pytest.fixture
def driver(mw: Memwarden) -> Iterator[Any]:
    """A psycopg connection of the store's, opened as a worker opens its own, in a repeatable
    read transaction that has read nothing yet."""
    with mw.store.read() as conn:
        opener = parallel.driver_open(conn)
    connection = opener.connect()
    try:
        connection.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        yield connection
    finally:
        connection.close()


def ledger_rows(driver: Any) -> int:
    row = driver.execute("SELECT count(*) FROM ledger").fetchone()
    return int(row[0])


def test_a_stream_stopped_early_keeps_the_transaction_and_its_snapshot(
    mw: Memwarden, driver: Any
) -> None:
    """The snapshot is taken by the stream's own query, inside its savepoint; rows committed
    by another connection after that stay out of the transaction's view once the cancelled
    stream's savepoint is rolled back to."""
    before = head_seq(mw)
    batches = cursor_batches(driver, "postgresql", ENDLESS, BATCH, stream=True)
    first = next(batches)
    assert len(first) == BATCH and first[0][0] == 1
    mw.remember("atlas", "Written while the stream was open")  # committed elsewhere
    assert head_seq(mw) > before
    started = time.monotonic()
    batches.close()
    assert time.monotonic() - started < STOP_WITHIN_S
    assert driver.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS
    assert ledger_rows(driver) == before
    with pytest.raises(psycopg.errors.InvalidSavepointSpecification):
        driver.execute("RELEASE SAVEPOINT memwarden_stream")  # released with the stream


def test_a_stream_read_to_its_end_leaves_the_transaction_as_it_was(
    mw: Memwarden, driver: Any
) -> None:
    before = ledger_rows(driver)  # the snapshot, taken before the stream
    query = DriverQuery("SELECT g FROM generate_series(1, 1000) AS g", None)
    rows = [
        row
        for batch in cursor_batches(driver, "postgresql", query, BATCH, stream=True)
        for row in batch
    ]
    assert [row[0] for row in rows] == list(range(1, 1001))
    mw.remember("atlas", "Written after the stream")
    assert driver.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS
    assert ledger_rows(driver) == before


def test_a_stream_that_fails_raises_and_the_transaction_goes_on(driver: Any) -> None:
    """An error in the middle of the rows reaches the caller; the savepoint is rolled back to,
    so the connection can still be asked what went wrong."""
    failing = DriverQuery("SELECT g, 1 / (5000 - g) FROM generate_series(1, 10000) AS g", None)
    with pytest.raises(psycopg.errors.DivisionByZero):
        for _batch in cursor_batches(driver, "postgresql", failing, BATCH, stream=True):
            pass
    assert driver.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS
    assert driver.execute("SELECT 1").fetchone() == (1,)


@pytest.mark.parametrize("chunked", [True, False], ids=["streamed", "cursor"])
def test_a_worker_reads_its_part_streamed_or_through_a_cursor(
    mw: Memwarden, monkeypatch: pytest.MonkeyPatch, chunked: bool
) -> None:
    """With a libpq older than 17 (no chunked rows) the worker reads through a server-side
    cursor instead; both give the same answer, the handover to the full walk included (an
    erased payload in the middle of the part)."""
    # More rows than two batches, the erased payload after the first: a stream stopped in
    # the middle of its part, with rows still on their way.
    first = mw.remember("atlas", "Fact 0 for the worker").memory.id
    for index in range(1, 3 * BATCH):
        mw.remember("atlas", f"Fact {index} for the worker")
    mw.erase(first + BATCH + 10, "personal data", wait=30)
    streamed: list[bool] = []
    real = fetch_pg.streamed_batches

    def spy(*args: Any, **kwargs: Any) -> Any:
        streamed.append(True)
        return real(*args, **kwargs)

    monkeypatch.setattr(fetch_pg, "streams", lambda: chunked)
    monkeypatch.setattr(fetch_pg, "streamed_batches", spy)
    job = whole_chain_job(mw)
    outcome = verify_worker.walk_job(job, lambda _checked: None)
    assert outcome.checked == job.last
    assert outcome.last_tag == row_at(mw, job.last)["tag"]
    assert streamed == ([True] if chunked else [])
