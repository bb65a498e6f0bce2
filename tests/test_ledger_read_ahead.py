"""The verify walk with its batches read ahead on a thread (``audit.fetch.read_ahead``, on by
default on PostgreSQL): the same answer as reading them in turn, for tampering at a batch's
first and last row, with erased payloads that send rows to the reference path mid-read; and an
error on the reader thread fails the walk loudly, never passes it short, never hangs.

Batches of two rows here, so every few rows cross a border. Read-ahead runs on PostgreSQL only
(``walk.READ_AHEAD``); on SQLite the same cases check the walk in turn."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from erase_support import scrub_all
from ledger_support import attacker, delete_rows, fast_witness, head_seq, set_fields
from memwarden import Memwarden
from memwarden.audit import fetch, walk
from memwarden.audit.verify import VerifyReport
from memwarden.db import schema

BATCH = 2


@pytest.fixture
def chain(mw: Memwarden, monkeypatch: pytest.MonkeyPatch) -> Memwarden:
    """About 25 rows in batches of two, one memory erased (its rows on the reference path)."""
    monkeypatch.setattr(walk, "BATCH", BATCH)
    fast_witness(mw)
    ids = []
    for index in range(8):
        memory = mw.remember("atlas", f"Fact number {index} about the launch").memory
        mw.promote(memory.id)
        ids.append(memory.id)
    mw.erase(ids[2], "privacy request")
    for memory_id in ids[4:]:
        mw.reinforce(memory_id)
    # The erasure's scrub runs in the background and appends to the ledger when it ends:
    # finished here, or it may land between the two walks of ``both_ways`` (seen in CI).
    scrub_all(mw)
    assert mw.ledger.witness is not None
    mw.ledger.witness.flush()
    return mw


def both_ways(mw: Memwarden, monkeypatch: pytest.MonkeyPatch) -> VerifyReport:
    """Verify with read-ahead, then without: the two reports must agree exactly."""
    ahead = mw.verify()
    monkeypatch.setattr(walk, "READ_AHEAD", False)
    in_turn = mw.verify()
    assert (ahead.ok, ahead.first_bad_seq, ahead.reason, ahead.rows_checked, ahead.head) == (
        in_turn.ok,
        in_turn.first_bad_seq,
        in_turn.reason,
        in_turn.rows_checked,
        in_turn.head,
    )
    return ahead


def test_a_sound_chain_with_an_erasure_verifies(
    chain: Memwarden, monkeypatch: pytest.MonkeyPatch
) -> None:
    report = both_ways(chain, monkeypatch)
    assert report.ok, report.reason
    assert report.rows_checked == head_seq(chain) > 10 * BATCH


# seq 3 is the first row of the second batch; seq 4 its last. The erasure's reference-path
# rows come before the later cases.
@pytest.mark.parametrize("seq", [3, 4, -2])
@pytest.mark.parametrize("tamper", ["payload", "actor", "deleted"])
def test_tampering_at_a_batch_border_is_named_the_same_way(
    chain: Memwarden, monkeypatch: pytest.MonkeyPatch, seq: int, tamper: str
) -> None:
    if seq < 0:
        seq = head_seq(chain) + seq + 1
    with attacker(chain) as conn:
        if tamper == "payload":
            conn.execute(
                sa.update(schema.ledger_payloads)
                .where(schema.ledger_payloads.c.seq == seq)
                .values(body='{"after":null,"before":null,"note":"rewritten"}')
            )
        elif tamper == "actor":
            set_fields(conn, seq, actor="mallory")
        else:
            delete_rows(conn, seq)
    report = both_ways(chain, monkeypatch)
    assert not report.ok and report.first_bad_seq == seq, report.reason
    assert report.rows_checked == seq - 1


def _readers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "memwarden-ledger-reader"]


class _Lost(Exception):
    """A stand-in for the connection failing mid-walk."""


def _failing_after(batches: int) -> Any:
    """``driver_batches`` that hands over ``batches`` real batches, then fails."""
    real = fetch.driver_batches

    def driver_batches(
        conn: sa.Connection, query: Any, size: int, name: str = "memwarden_verify"
    ) -> Iterator[Any]:
        source = real(conn, query, size, name)
        try:
            for index, batch in enumerate(source):
                if index == batches and name == "memwarden_verify":
                    raise _Lost("the connection went away")
                yield batch
        finally:
            source.close()

    return driver_batches


def test_an_error_on_the_reader_thread_fails_verify_loudly(
    chain: Memwarden, monkeypatch: pytest.MonkeyPatch
) -> None:
    """(On SQLite the error comes from the walk's own thread: the same outcome.)"""
    monkeypatch.setattr(walk, "driver_batches", _failing_after(3))
    with pytest.raises(_Lost, match="went away"):
        chain.verify()
    assert not _readers()  # the reader was joined, not left running
    # The connection is usable again afterwards: the next walk passes.
    monkeypatch.undo()
    assert chain.verify().ok


def test_read_ahead_hands_every_batch_in_order_and_then_the_error() -> None:
    def source() -> Iterator[list[Any]]:
        for index in range(5):
            yield [index]
        raise _Lost("after five")

    seen: list[list[Any]] = []
    with pytest.raises(_Lost, match="after five"), fetch.read_ahead(source(), depth=1) as ahead:
        for batch in ahead:
            seen.append(batch)
    assert seen == [[0], [1], [2], [3], [4]]


def test_leaving_early_stops_the_reader_and_closes_the_source() -> None:
    closed = threading.Event()

    def endless() -> Iterator[list[Any]]:
        try:
            while True:
                yield [0]
        finally:
            closed.set()

    with fetch.read_ahead(endless()) as ahead:
        assert next(iter(ahead)) == [0]
        assert _readers()
    assert closed.is_set() and not _readers()


def test_a_reader_that_dies_without_a_word_is_an_error_not_a_hang(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Should the thread end with neither its batches' end nor an error handed over (here:
    handing the error over fails), the caller raises instead of waiting for ever."""

    def refuse(error: BaseException) -> None:
        raise RuntimeError("cannot hand the error over")

    def failing() -> Iterator[list[Any]]:
        yield [1]
        raise _Lost("lost")

    monkeypatch.setattr(fetch, "_POLL_S", 0.05)
    monkeypatch.setattr(fetch._Raised, "__init__", refuse)
    monkeypatch.setattr(threading, "excepthook", lambda args: None)  # the thread's own report
    seen = []
    with pytest.raises(fetch.ReaderFailed), fetch.read_ahead(failing()) as ahead:
        seen.extend(ahead)
    assert seen == [[1]]
