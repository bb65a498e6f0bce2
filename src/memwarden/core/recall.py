"""Recall (ranked memories and chunks, with provenance): the checks, one ranking per scope and
kind (core/recall_rank.py), the step after it (recency or importance: core/rerank.py; trust
tier and the cap per source: core/recall_trust.py) and what changed (core/changes.py).

The parts: recall_query.py (the query and its ``Ranker``), recall_fusion.py (meaning within the
neighbourhood, the text gate), recall_hits.py (candidates' facts and served rows),
recall_rank.py (one ranking), recall_context.py (the context pack). The names other modules
use are importable from here too.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from memwarden.core import (
    changes,
    metadata,
    provenance,
    recall_query,
    recall_trust,
    rerank,
    validate,
    vectors,
)
from memwarden.core.recall_context import ContextItem, ContextPack, context
from memwarden.core.recall_hits import Hit
from memwarden.core.recall_query import MAX_K, MODES, Ranker, check_mode, check_query
from memwarden.core.recall_rank import OVERFETCH, rank
from memwarden.core.runtime import Runtime

__all__ = [
    "MAX_K",
    "MODES",
    "ContextItem",
    "ContextPack",
    "Hit",
    "Ranker",
    "Recalled",
    "context",
    "rank",
    "recall",
]

CHUNK_WEIGHT = 0.9  # a statement someone kept beats a passage that merely matches
DEEPER = 200  # how deep recall looks, once, for other sources under a stuffed ranking


@dataclass(frozen=True)
class Recalled:
    """A recall's hits, the mode asked, the mode used and, when they differ, why."""

    hits: list[Hit]
    mode: str
    mode_used: str
    fallback: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "mode_used": self.mode_used,
            "fallback": self.fallback,
            "hits": [hit.to_dict() for hit in self.hits],
        }


def recall(
    rt: Runtime,
    query: str,
    *,
    project: str | None = None,
    types: list[str] | None = None,
    k: int = 10,
    include_chunks: bool = True,
    mode: str | None = None,
    include_superseded: bool = False,
    min_tier: str | None = None,
    projects: frozenset[str] | None = None,
    where: Any = None,
    rank_by: str | None = None,
    half_life_days: float | None = None,
) -> Recalled:
    """``include_superseded``: also memories superseded in the last
    ``recall_superseded_days``, marked (status, what replaced them, when, by whom).
    ``min_tier``: only hits at least this trusted. ``projects``: the caller may read only
    these (used when ``project`` is None). ``where``: metadata conditions (``key=value``
    texts or a mapping; core/metadata.py); with one, only memories are recalled (chunks have
    no metadata). ``rank_by``: relevance (default), recency or importance (core/rerank.py),
    recency with a half-life of ``half_life_days`` (30 by default)."""
    terms = check_query(query, k)
    mode = check_mode(rt, mode)
    conditions = metadata.parse_where(where)
    rank_by = rerank.check(rank_by)
    half_life = rerank.check_half_life(half_life_days)
    if conditions:
        include_chunks = False
    types = [validate.memory_type(rt.settings, t) for t in types] if types else None
    if min_tier is not None:
        provenance.check_tier(min_tier)
    checked = False
    if project is not None and mode != "text" and rt.embedders.configured:
        # A missing project is refused before the query is embedded (the costly step: a model
        # run or a network call), at the price of a short read transaction of its own (p50
        # 0.2 ms SQLite, 1.9 ms PostgreSQL, docs/recall.md); without an embedder nothing is
        # embedded and the check stays in the ranking's transaction.
        with rt.read() as conn:
            validate.project_exists(conn, project)
        checked = True
    # The query is embedded on a worker while the ranking below searches full text
    # (recall_query.start_ranker); bench/row_macs.py swaps make_ranker for an unguarded one.
    ranker = recall_query.start_ranker(rt, query, terms, mode)
    since = (
        datetime.now(UTC) - timedelta(days=rt.settings.recall_superseded_days)
        if include_superseded
        else None
    )
    share = rt.settings.recall_source_share
    # Rank wider only when a filter will drop hits; the cap looks deeper below if it must.
    wide = k * OVERFETCH if min_tier is not None or rank_by != "relevance" else k
    scopes: list[str | None] = (
        [project] if project is not None or projects is None else [*sorted(projects)]
    )
    # One read transaction for the ranking: one snapshot, and each transaction's begin costs
    # about a millisecond (profiled).
    with rt.read() as conn:
        if project is not None and not checked:
            validate.project_exists(conn, project)
        while True:
            merged: list[Hit] = []
            for name in scopes:
                merged += rank(conn, ranker, vectors.MEMORY, wide, name, types, since, conditions)
                if include_chunks and not types:
                    merged += _weigh_chunks(rank(conn, ranker, vectors.CHUNK, wide, name, None))
            merged = rerank.rerank(merged, rank_by, half_life)
            merged.sort(key=lambda h: (-h.score, h.kind != "memory", h.id))
            trusted = recall_trust.at_least(recall_trust.annotate(conn, merged), min_tier)
            # One source filling the ranking (stuffing) hides the others below it: look
            # deeper. Once at most: a recall's cost stays bounded (two rankings) whatever the
            # data.
            deeper = len(merged) >= wide and wide < DEEPER
            if not (deeper and recall_trust.short_of_others(trusted, k, share)):
                break
            wide = max(k * OVERFETCH * 4, DEEPER)
        hits = recall_trust.cap_per_source(trusted, k, share)
        used, fallback = ranker.result()
        changes.annotate(conn, hits, used.guard)
    return Recalled(hits, mode, used.mode, fallback)


def _weigh_chunks(hits: list[Hit]) -> list[Hit]:
    return [
        Hit(h.kind, h.id, h.score * CHUNK_WEIGHT, h.content, h.project, h.provenance) for h in hits
    ]
