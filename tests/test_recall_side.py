"""A text recall runs its other full-text searches on a second thread (core/recall_side.py):
the same hits as one after the other, the searches really overlap, a busy pool costs no
wait, an error there reaches the caller, and a candidate the caller's snapshot does not hold
is never served."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from typing import Any

import pytest

from memwarden import Memwarden, Settings
from memwarden.core import recall_side, search

FACTS = [
    "The launch review moved to the Tuesday after the audit.",
    "The audit of the billing service starts in April.",
    "Billing alerts go to the on-call channel first.",
    "The on-call rota changes every Monday at nine.",
    "Invoices older than a year are archived by the billing job.",
]
HANDBOOK = """# Billing

The billing service sends invoices nightly. An audit of billing happens every April.

# On-call

The on-call engineer answers billing alerts within fifteen minutes.

# Launches

A launch review is held before every release; the audit team attends.
"""
QUERIES = ["billing audit", "on-call alerts", "launch review audit", "invoices archived"]


@pytest.fixture
def mw(settings: Settings) -> Iterator[Memwarden]:
    with Memwarden.init(settings) as opened:
        for project in ("p", "q"):
            opened.add_project(project)
            for fact in FACTS:
                opened.remember(project, fact, status="active")
            opened.ingest_text(project, f"handbook-{project}.md", HANDBOOK)
        yield opened


def _one_after_the_other(
    rt: Any, conn: Any, searches: dict[Any, recall_side.Search]
) -> dict[Any, list[search.Scored]]:
    return {key: run(conn) for key, run in searches.items()}


def _hits(mw: Memwarden, query: str, project: str | None) -> list[tuple[str, int, float]]:
    found = mw.recall_detailed(query, project, k=6, mode="text")
    return [(hit.kind, hit.id, round(hit.score, 9)) for hit in found.hits]


def _answered_without_waiting(mw: Memwarden) -> list[tuple[str, int, float]] | None:
    """The recall's hits if it finished within 10 s on a thread of its own (else None)."""
    got: list[list[tuple[str, int, float]]] = []
    thread = threading.Thread(target=lambda: got.append(_hits(mw, "billing audit", "p")))
    thread.start()
    thread.join(10)
    return got[0] if got else None


@pytest.mark.parametrize("project", ["p", None])
def test_the_same_hits_as_searching_one_after_the_other(
    mw: Memwarden, monkeypatch: pytest.MonkeyPatch, project: str | None
) -> None:
    side = {query: _hits(mw, query, project) for query in QUERIES}
    assert all(side.values())
    kinds = {kind for hits in side.values() for kind, _, _ in hits}
    assert kinds == {"memory", "chunk"}
    monkeypatch.setattr(recall_side, "search_all", _one_after_the_other)
    assert {query: _hits(mw, query, project) for query in QUERIES} == side


def test_the_searches_overlap(mw: Memwarden, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each search waits until another has started: one after the other, the first would
    time out alone."""
    text_search = search.search
    started = threading.Barrier(2, timeout=10)
    threads: set[str] = set()

    def meeting(*args: Any, **kwargs: Any) -> Any:
        threads.add(threading.current_thread().name)
        started.wait()
        return text_search(*args, **kwargs)

    monkeypatch.setattr(search, "search", meeting)
    found = mw.recall_detailed("billing audit", "p", k=4, mode="text")
    assert found.hits
    assert threading.current_thread().name in threads
    assert any(name.startswith("memwarden-search") for name in threads)


def test_a_busy_pool_costs_the_caller_no_wait(mw: Memwarden) -> None:
    expected = _hits(mw, "billing audit", "p")
    release = threading.Event()
    pool = recall_side._executor()
    blockers: list[Future[bool]] = [
        pool.submit(release.wait, 30) for _ in range(recall_side.WORKERS)
    ]
    try:
        assert _answered_without_waiting(mw) == expected, "it waited for a busy thread"
    finally:
        release.set()
        for blocker in blockers:
            blocker.result(10)


def test_a_thread_waiting_for_a_connection_costs_the_caller_no_wait(
    mw: Memwarden, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pooled thread takes a search only once it holds a connection: while the database's
    pool keeps it waiting, the caller runs every search itself."""
    expected = _hits(mw, "billing audit", "p")
    release = threading.Event()
    waited = threading.Event()
    real_read = mw.store.read_each

    @contextmanager
    def slow_for_the_thread() -> Iterator[Any]:
        if threading.current_thread().name.startswith("memwarden-search"):
            waited.set()
            release.wait(30)
        with real_read() as conn:
            yield conn

    text_search = search.search

    def after_the_thread_waits(*args: Any, **kwargs: Any) -> Any:
        waited.wait(10)  # the thread is stuck getting its connection before the caller starts
        return text_search(*args, **kwargs)

    monkeypatch.setattr(mw.store, "read_each", slow_for_the_thread)
    monkeypatch.setattr(search, "search", after_the_thread_waits)
    try:
        assert _answered_without_waiting(mw) == expected, "it waited for a thread's connection"
        assert waited.is_set()
    finally:
        release.set()


def test_a_metadata_filter_keeps_every_search_on_the_callers_transaction(
    mw: Memwarden, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only the search applies a metadata filter (``rank`` does not read metadata again), so
    no search of such a recall may run in another snapshot."""
    mw.remember(
        "p",
        "The billing audit checklist lives in the wiki.",
        status="active",
        metadata={"team": "ops"},
    )
    text_search = search.search
    threads: list[str] = []

    def watched(*args: Any, **kwargs: Any) -> Any:
        threads.append(threading.current_thread().name)
        return text_search(*args, **kwargs)

    monkeypatch.setattr(search, "search", watched)
    found = mw.recall_detailed("billing audit", None, k=4, mode="text", where={"team": "ops"})
    assert [hit.content for hit in found.hits] == ["The billing audit checklist lives in the wiki."]
    assert threads and set(threads) == {threading.current_thread().name}


def test_an_error_on_the_search_thread_reaches_the_caller(
    mw: Memwarden, monkeypatch: pytest.MonkeyPatch
) -> None:
    text_search = search.search

    taken = threading.Event()

    def failing_elsewhere(*args: Any, **kwargs: Any) -> Any:
        if threading.current_thread().name.startswith("memwarden-search"):
            taken.set()
            raise RuntimeError("the chunk index fell over")
        taken.wait(10)  # the caller is still on its first search when the thread takes one
        return text_search(*args, **kwargs)

    monkeypatch.setattr(search, "search", failing_elsewhere)
    with pytest.raises(RuntimeError, match="chunk index fell over"):
        mw.recall_detailed("billing audit", "p", k=4, mode="text")


def test_a_candidate_the_callers_snapshot_lacks_is_not_served(
    mw: Memwarden, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The other thread's snapshot may be newer than the caller's: a chunk or memory only it
    holds is dropped when the caller reads the candidates again."""
    real = recall_side.search_all

    def with_ghosts(rt: Any, conn: Any, searches: Any) -> Any:
        found = real(rt, conn, searches)
        return {key: [search.Scored(10**9, 99.0), *hits] for key, hits in found.items()}

    expected = _hits(mw, "billing audit", "p")
    monkeypatch.setattr(recall_side, "search_all", with_ghosts)
    assert _hits(mw, "billing audit", "p") == expected
