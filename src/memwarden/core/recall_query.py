"""How one recall ranks (the ``Ranker``): the query checked, its content terms, the mode and,
unless full text only, the query's vector from the embedder.

Preparing the ranker is the one step of a recall that may cost an embedding (~12 ms with the
local model, a network call with an endpoint), so callers check what is cheap (the project
exists) before calling ``make_ranker``.
"""

from __future__ import annotations

from dataclasses import dataclass

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
