"""A closed memwarden refuses every call that reads or writes, and no writer of its own outlives
``close`` to write on a pool the close let go of.

Before, a call after ``close`` ran on a pool SQLAlchemy opened anew: a mutation committed (with
its ledger entry) while the operation log, closed beside the store, dropped its record of it
without a word, and the read log's thread lived on after every close.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from structlog.testing import capture_logs

from memwarden import Memwarden
from memwarden.config import Settings
from memwarden.core.erasure.scrub import Scrubber
from memwarden.errors import ClosedError

CALLS: dict[str, Callable[[Memwarden, int], Any]] = {
    "remember": lambda mw, _: mw.remember("atlas", "written after the close"),
    "update": lambda mw, memory_id: mw.update(memory_id, content="changed after the close"),
    "promote": lambda mw, memory_id: mw.promote(memory_id),
    "get": lambda mw, memory_id: mw.get(memory_id),
    "recall": lambda mw, _: mw.recall("written", project="atlas"),
    "history": lambda mw, memory_id: mw.history(memory_id),
    "list_memories": lambda mw, _: mw.list_memories(project="atlas"),
}


@pytest.mark.parametrize("call", sorted(CALLS))
def test_a_closed_memwarden_refuses_the_call_and_writes_nothing(
    mw: Memwarden, settings: Settings, call: str
) -> None:
    memory = mw.remember("atlas", "written before the close").memory
    head = mw.recent(limit=1)[0].seq
    mw.close()

    with pytest.raises(ClosedError, match="was closed: open memwarden again"):
        CALLS[call](mw, memory.id)

    reopened = Memwarden(settings)
    try:
        assert reopened.recent(limit=1)[0].seq == head  # no mutation reached the ledger
        assert [m.content for m in reopened.list_memories(project="atlas")] == [
            "written before the close"
        ]
        assert reopened.verify().ok
    finally:
        reopened.close()


def test_closing_twice_is_harmless(mw: Memwarden) -> None:
    mw.close()
    mw.close()
    assert mw.store.closed


def test_a_store_closed_first_still_lets_memwarden_close_its_writers(mw: Memwarden) -> None:
    """``close`` does not take a closed store for a closed memwarden: its alerts would stay
    installed, and a later ``emit_alert`` would land in them."""
    from memwarden.observability.alerts import default

    mw.store.close()
    mw.close()
    assert mw.alerts not in default._installed


def test_the_read_log_writes_what_was_served_and_its_thread_ends_on_close(
    mw: Memwarden, settings: Settings
) -> None:
    memory = mw.remember("atlas", "a memory someone reads").memory
    mw.get(memory.id)
    thread = mw.reads._thread
    assert thread is not None and thread.is_alive()
    mw.close()
    assert not thread.is_alive()

    reopened = Memwarden(settings)
    try:
        assert [served.operation for served in reopened.readers(memory.id)] == ["get"]
    finally:
        reopened.close()


def test_the_scrubber_stops_quietly_when_the_store_closes_under_it(mw: Memwarden) -> None:
    scrubber = Scrubber(mw.runtime)
    scrubber.FIRST_DELAY = 0.0
    mw.close()
    with capture_logs() as logs:
        scrubber.kick()
        thread = scrubber._thread
        assert thread is not None
        thread.join(timeout=10)
    assert not thread.is_alive()
    assert not [entry for entry in logs if entry["event"] == "erase_scrub_failed"]
    with pytest.raises(ClosedError):
        scrubber.run_once()


def test_a_closed_store_opens_no_connection(mw: Memwarden) -> None:
    store = mw.store
    mw.close()
    for use in (store.read, store.read_each, store.write):
        with pytest.raises(ClosedError), use():
            pass
    with pytest.raises(ClosedError):
        store.connect()
    assert store.engine.pool.checkedout() == 0
