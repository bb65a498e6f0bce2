"""A recall embeds its query on a worker while it searches full text (core/recall_query.py):
the two overlap, an embedder failure still gives the full-text fallback, any other error
reaches the caller, and concurrent recalls agree with one at a time."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from threadpoolctl import threadpool_info

from memwarden import Memwarden, Settings
from memwarden.core import recall, recall_context, recall_query, search, vectors
from memwarden.core.embedding import _load_local
from recall_support import remember_all, with_model

FACTS = [
    "The user is pescatarian and avoids red meat.",
    "The user prefers dark mode in every editor.",
    "The rocket launch moved to April.",
    "The team meets on Tuesdays at ten.",
    "Current sprint restrictions: no deploys on Fridays.",
]
QUERIES = ["what food does the user eat", "rocket launch", "when are meetings", "editor theme"]


@pytest.fixture
def mw(settings: Settings) -> Iterator[Memwarden]:
    with Memwarden.init(with_model(settings)) as opened:
        opened.add_project("p")
        remember_all(opened, "p", FACTS)
        yield opened


def test_the_query_is_embedded_while_full_text_is_searched(
    mw: Memwarden, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = _load_local()
    embed, text_search = model.embed, search.search
    searched = threading.Event()
    seen: dict[str, Any] = {}

    def slow_embed(texts: list[str]) -> Any:
        # Done one after the other, the search would start only after this returns: the
        # wait would time out.
        seen["overlapped"] = searched.wait(10)
        seen["embed_thread"] = threading.current_thread().name
        return embed(texts)

    def watched_search(*args: Any, **kwargs: Any) -> Any:
        seen["search_thread"] = threading.current_thread().name
        searched.set()
        return text_search(*args, **kwargs)

    monkeypatch.setattr(model, "embed", slow_embed)
    monkeypatch.setattr(search, "search", watched_search)
    found = mw.recall_detailed("what food does the user eat", "p", k=3)
    assert (found.mode_used, found.fallback) == ("hybrid", None)
    assert found.hits[0].content == FACTS[0]
    assert seen["overlapped"] is True
    assert seen["embed_thread"].startswith("memwarden-embed")
    assert seen["search_thread"] == threading.current_thread().name


def test_an_embedder_failing_on_the_worker_falls_back_to_full_text(
    mw: Memwarden, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = _load_local()
    threads: list[str] = []

    def broken(texts: list[str]) -> Any:
        threads.append(threading.current_thread().name)
        raise RuntimeError("the model fell over")

    monkeypatch.setattr(model, "embed", broken)
    for _ in range(recall_query.WORKERS + 2):  # the workers are given back after a failure
        mw.runtime.embedders._error = None  # ask the model again each time (no retry pause)
        found = mw.recall_detailed("rocket launch", "p", k=3)
        assert found.mode_used == "text"
        assert found.fallback is not None and "the model fell over" in found.fallback
        assert found.hits[0].content == FACTS[2]
    assert len(threads) == recall_query.WORKERS + 2
    assert all(name.startswith("memwarden-embed") for name in threads)


def test_an_unexpected_error_preparing_the_ranker_reaches_the_caller(
    mw: Memwarden, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any) -> Any:
        raise ValueError("not an embedder failure")

    monkeypatch.setattr(recall_query, "make_ranker", broken)
    with pytest.raises(ValueError, match="not an embedder failure"):
        mw.recall("rocket launch", "p")


def _blas_threads() -> int:
    return max(int(lib["num_threads"]) for lib in threadpool_info() if lib["user_api"] == "blas")


def test_concurrent_recalls_agree_with_serial_ones(mw: Memwarden) -> None:
    blas_before = _blas_threads()
    serial = {q: [h.id for h in mw.recall(q, "p", k=3)] for q in QUERIES}
    asked = QUERIES * 8

    def one(query: str) -> tuple[str, list[int], str]:
        found = mw.recall_detailed(query, "p", k=3)
        return query, [h.id for h in found.hits], found.mode_used

    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(one, asked))
    assert len(results) == len(asked)
    for query, ids, used in results:
        assert used == "hybrid"
        assert ids == serial[query]
    # Blocks limited to one BLAS thread ran at once on several threads: the host's setting
    # is back after the last.
    assert _blas_threads() == blas_before


def _watch_vector_searches(mw: Memwarden, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """A document ingested, the model loaded, then the name of the thread of every vector
    search (``VectorIndex.nearest``) recorded in the list returned."""
    mw.ingest_text("p", "notes.md", "# Notes\n\nThe launch pad is repainted every spring.\n")
    assert mw.wait_for_embeddings(60)
    mw.recall("load the model", "p")
    threads: list[str] = []
    nearest = vectors.INDEX.nearest

    def watched(*args: Any, **kwargs: Any) -> Any:
        threads.append(threading.current_thread().name)
        return nearest(*args, **kwargs)

    monkeypatch.setattr(vectors.INDEX, "nearest", watched)
    return threads


def test_the_vector_search_runs_on_the_worker_and_finds_what_a_ranking_finds_itself(
    mw: Memwarden, monkeypatch: pytest.MonkeyPatch
) -> None:
    mw.add_project("q")
    remember_all(mw, "q", ["Lunch is fish on Fridays.", "The rocket has three stages."])
    threads = _watch_vector_searches(mw, monkeypatch)
    asked = [
        dict(query=q, project=project, mode=mode, k=k)
        for q in [*QUERIES, "rocket stages", "what is for lunch"]
        for project in ("p", None)
        for mode in ("hybrid", "semantic")
        for k in (1, 3)
    ]
    ahead = [mw.recall_detailed(**a).to_dict() for a in asked]  # type: ignore[arg-type]
    assert threads and all(name.startswith("memwarden-embed") for name in threads)
    # Each ranking searching the vectors itself, on the caller's thread, finds the same.
    monkeypatch.setattr(recall, "nearest_ahead", lambda *args: None)
    threads.clear()
    alone = [mw.recall_detailed(**a).to_dict() for a in asked]  # type: ignore[arg-type]
    assert threads and set(threads) == {threading.current_thread().name}
    assert ahead == alone
    assert any(len(found["hits"]) > 1 for found in ahead)


def test_a_context_pack_searches_vectors_on_the_worker_and_finds_the_same(
    mw: Memwarden, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads = _watch_vector_searches(mw, monkeypatch)
    asked = [(q, mode) for q in [*QUERIES, "launch pad"] for mode in ("hybrid", "semantic")]
    ahead = [mw.context(q, "p", mode=mode) for q, mode in asked]
    assert threads and all(name.startswith("memwarden-embed") for name in threads)
    monkeypatch.setattr(recall_context, "nearest_ahead", lambda *args: None)
    threads.clear()
    alone = [mw.context(q, "p", mode=mode) for q, mode in asked]
    assert threads and set(threads) == {threading.current_thread().name}
    assert ahead == alone


def test_a_vector_search_failing_on_the_worker_reaches_the_caller(
    mw: Memwarden, monkeypatch: pytest.MonkeyPatch
) -> None:
    mw.recall("load the model", "p")

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("the matrix is gone")

    monkeypatch.setattr(vectors.INDEX, "nearest", broken)
    with pytest.raises(RuntimeError, match="the matrix is gone"):
        mw.recall("rocket launch", "p")
