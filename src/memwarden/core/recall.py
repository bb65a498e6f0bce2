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

from sqlalchemy import Connection

from memwarden.core import (
    changes,
    metadata,
    provenance,
    recall_query,
    recall_side,
    recall_trust,
    rerank,
    search,
    validate,
    vectors,
)
from memwarden.core.recall_context import ContextItem, ContextPack, context
from memwarden.core.recall_hits import Hit
from memwarden.core.recall_query import MAX_K, MODES, Ranker, check_mode, check_query
from memwarden.core.recall_rank import (
    OVERFETCH,
    nearest_ahead,
    rank,
    text_candidates,
    withheld_count,
)
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
    # Memories that would have been served but were left out: changed outside memwarden (their
    # row MAC fails; each raised its alert). Said, so a short answer is not taken as complete.
    withheld: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "mode_used": self.mode_used,
            "fallback": self.fallback,
            "withheld": self.withheld,
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
    # One connection for the ranking: on SQLite one transaction, so one snapshot (and each
    # transaction's begin cost about a millisecond, profiled); on PostgreSQL each statement
    # reads its own snapshot, as it did inside a READ COMMITTED transaction, without BEGIN
    # and COMMIT's round trips (Store.read_each).
    with rt.store.read_each() as conn:
        # A missing project is refused before the query is embedded (the costly step: a
        # model run or a network call). Then the query is embedded on a worker while full
        # text is searched below (recall_query.PendingRanker); bench/row_macs.py swaps
        # make_ranker for an unguarded one. Full text alone costs no more than the check: it
        # is made only when nothing was found (a hit is a row of the project: it exists).
        if project is not None and mode != "text":
            validate.project_exists(conn, project)
        kinds = (
            [vectors.MEMORY, vectors.CHUNK] if include_chunks and not types else [vectors.MEMORY]
        )
        then = nearest_ahead(
            rt, conn, mode, conditions, {(n, kind): wide for n in scopes for kind in kinds}
        )
        ranker = recall_query.PendingRanker(rt, query, terms, mode, then)
        # Every full-text search of the first ranking runs while the query is embedded, not
        # only the first one's (the rest would wait on the embedding otherwise).
        ahead: dict[tuple[str | None, str], list[search.Scored]] = {}
        if ranker.pending and mode != "semantic":
            for name in scopes:
                for kind in kinds:
                    ahead[(name, kind)] = text_candidates(
                        conn, ranker, kind, wide, name, *_filters(kind, types, since, conditions)
                    )
        elif mode == "text" and not conditions:
            # No embedding to overlap with: the searches overlap each other (recall_side.py;
            # not under a metadata filter, which only the search applies).
            ahead = recall_side.search_all(
                rt,
                conn,
                {
                    (name, kind): _text_search(ranker, kind, wide, name, types, since, conditions)
                    for name in scopes
                    for kind in kinds
                },
            )
        near_ahead: dict[tuple[str | None, str], vectors.Nearest] = ranker.after() or {}
        replaced: dict[int, list[Any]] = {}  # read with the candidates, for changes.annotate
        withheld: dict[int, float] = {}
        while True:
            merged: list[Hit] = []
            for name in scopes:
                for kind in kinds:
                    found = rank(
                        conn,
                        ranker,
                        kind,
                        wide,
                        name,
                        *_filters(kind, types, since, conditions),
                        text_found=ahead.pop((name, kind), None),
                        near_found=near_ahead.pop((name, kind), None),
                        replaced_out=replaced,
                        withheld_out=withheld,
                    )
                    merged += found if kind == vectors.MEMORY else _weigh_chunks(found)
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
        if project is not None and mode == "text" and not merged:
            validate.project_exists(conn, project)
        used, fallback = ranker.result()
        changes.annotate(conn, hits, used.guard, replaced)
    return Recalled(hits, mode, used.mode, fallback, withheld_count(withheld, hits, k))


def _text_search(
    ranker: recall_query.PendingRanker,
    kind: str,
    k: int,
    scope: str | None,
    types: list[str] | None,
    since: datetime | None,
    conditions: metadata.Where,
) -> recall_side.Search:
    def run(conn: Connection) -> list[search.Scored]:
        return text_candidates(
            conn, ranker, kind, k, scope, *_filters(kind, types, since, conditions)
        )

    return run


def _weigh_chunks(hits: list[Hit]) -> list[Hit]:
    return [
        Hit(h.kind, h.id, h.score * CHUNK_WEIGHT, h.content, h.project, h.provenance) for h in hits
    ]


def _filters(
    kind: str, types: list[str] | None, since: datetime | None, conditions: metadata.Where
) -> tuple[list[str] | None, datetime | None, metadata.Where]:
    """A ranking's filters: chunks have no type, status or metadata."""
    return (types, since, conditions) if kind == vectors.MEMORY else (None, None, ())
