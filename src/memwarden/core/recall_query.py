"""How one recall ranks (the ``Ranker``): the query checked, its content terms, the mode and,
unless full text only, the query's vector from the embedder.

Preparing the ranker is the one step of a recall that may cost an embedding (~12 ms with the
local model, a network call with an endpoint), so callers check what is cheap (the project
exists) before calling ``make_ranker``. ``PendingRanker`` runs it on a small shared pool of
threads so a recall's full-text search runs while its query is embedded (the model's matrix
products and the database drivers release the GIL): on two idle cores a hybrid recall at 100k
memories no longer pays the two one after the other (docs/recall.md).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from memwarden.core.embedding import EmbedderUnavailable, Vectors
from memwarden.core.runtime import Runtime
from memwarden.core.tamper import RowGuard
from memwarden.core.text import content_terms
from memwarden.errors import InvalidInputError

MAX_K = 100
MAX_QUERY_CHARS = 2000
MODES = ("hybrid", "text", "semantic")


def check_query(query: str, k: int) -> list[str]:
    """The query's content terms; an empty or oversized query, or ``k`` out of range, refused."""
    if not isinstance(query, str) or not query.strip():
        raise InvalidInputError("the query is empty")
    if len(query) > MAX_QUERY_CHARS:
        raise InvalidInputError(f"the query is over {MAX_QUERY_CHARS} characters")
    if not 1 <= k <= MAX_K:
        raise InvalidInputError(f"k must be between 1 and {MAX_K}")
    return content_terms(query)


def check_mode(rt: Runtime, mode: str | None) -> str:
    mode = mode or rt.settings.recall_mode
    if mode not in MODES:
        raise InvalidInputError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
    return mode


@dataclass(frozen=True)
class Ranker:
    """How one recall ranks: its mode, the query's terms and (unless text) its vector."""

    mode: str
    terms: list[str]
    query_vector: Vectors | None
    model: str | None
    semantic_weight: float
    # Checks each memory's row MAC before it is served (None: unchecked, the benchmark's
    # baseline); a memory that fails is left out.
    guard: RowGuard | None = None

    @property
    def semantic(self) -> bool:
        return self.query_vector is not None and self.model is not None


def make_ranker(rt: Runtime, query: str, terms: list[str], mode: str) -> tuple[Ranker, str | None]:
    """The ranker for a query; when meaning was asked for and is not available, a full-text
    ranker and the reason (recall never fails for want of an embedder)."""
    weight = rt.settings.recall_semantic_weight
    guard = rt.guard
    if mode == "text":
        return Ranker(mode, terms, None, None, weight, guard), None
    try:
        vector = rt.embedders.embed([query])[0]
        model = rt.embedders.get().model_id
    except EmbedderUnavailable as exc:
        return Ranker("text", terms, None, None, weight, guard), str(exc)
    return Ranker(mode, terms, vector, model, weight, guard), None


# Two workers: one recall's embedding overlaps its text search; more would only queue model
# runs on a small machine. When both are busy the caller embeds on its own thread (no queueing
# behind other recalls, nor behind a slow endpoint).
WORKERS = 2
_pool = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="memwarden-embed")
_slots = threading.BoundedSemaphore(WORKERS)


class PendingRanker:
    """A ranker being prepared: its query's vector computed on a worker thread while the
    caller searches full text (which needs only the terms). ``result()`` waits for it; an
    embedder that fails gives the full-text ranker and the reason, as ``make_ranker`` does,
    and any other error is raised to the caller, never dropped.

    ``then``: more work for the worker once the query has a vector (recall's vector searches
    over matrices it refreshed first), its result in ``after()``; None when the vector was
    not computed on a worker or meaning is not used."""

    def __init__(
        self,
        rt: Runtime,
        query: str,
        terms: list[str],
        mode: str,
        then: Callable[[Ranker], Any] | None = None,
    ) -> None:
        self.mode = mode  # the mode asked (the one used is ``result()[0].mode``)
        self.terms = terms
        self._done: tuple[Ranker, str | None] | None = None
        self._after: Any = None
        self._future: Future[tuple[Ranker, str | None, Any]] | None = None
        if mode == "text" or not rt.embedders.configured or not _slots.acquire(blocking=False):
            self._done = make_ranker(rt, query, terms, mode)
            return
        try:
            self._future = _pool.submit(_prepare, rt, query, terms, mode, then)
        except BaseException:
            _slots.release()
            raise
        self._future.add_done_callback(lambda _: _slots.release())

    @property
    def pending(self) -> bool:
        """Whether the query is being embedded on a worker (not yet waited for)."""
        return self._done is None

    def result(self) -> tuple[Ranker, str | None]:
        if self._done is None:
            assert self._future is not None
            ranker, why, self._after = self._future.result()
            self._done = ranker, why
        return self._done

    def after(self) -> Any:
        """What ``then`` returned (waiting for it), or None."""
        self.result()
        return self._after


def _prepare(
    rt: Runtime, query: str, terms: list[str], mode: str, then: Callable[[Ranker], Any] | None
) -> tuple[Ranker, str | None, Any]:
    ranker, why = make_ranker(rt, query, terms, mode)
    after = then(ranker) if then is not None and ranker.semantic else None
    return ranker, why, after


def settled(ranker: Ranker | PendingRanker) -> Ranker:
    return ranker.result()[0] if isinstance(ranker, PendingRanker) else ranker
