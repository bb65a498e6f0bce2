"""One ranking of one kind (memories or chunks) for one scope: the candidates of full text and
of the vector index pooled, filtered on their facts, fused (core/recall_fusion.py) and the best
read in full, each memory's row MAC checked before it is served.

Three modes: ``text`` (stemmed full text), ``semantic`` (cosine against the query's
neighbourhood) and ``hybrid``: both candidate lists pooled and fused as
``w · meaning + (1 − w) · text`` with ``w`` = ``recall_semantic_weight`` (0.8) — a weighted
fusion tuned on bench/recall_quality.py, because plain reciprocal rank fusion let full-text
distractors that share words push paraphrases out.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from memwarden.core import metadata, recall_fusion, search, vectors
from memwarden.core.recall_hits import Hit, chunk_hits, facts, memory_hits, passes
from memwarden.core.recall_query import PendingRanker, Ranker, settled
from memwarden.core.runtime import Runtime

POOL_FACTOR = 5  # candidates each ranking brings to the fusion, per result asked for
MIN_POOL = 50
SUPERSEDED_WEIGHT = 0.9  # a replaced fact ranks below its replacement at equal relevance
# Callers rank this many times k when a step after the ranking (minimum tier, cap per source,
# recency or importance) may drop or reorder hits, so k still come out when they can.
OVERFETCH = 3
SPARE = 2  # rows read beyond those needed, so one failing its check costs no second query


def pool_size(k: int) -> int:
    """How many candidates each list (words, meaning) brings to a ranking of ``k``."""
    return max(k * POOL_FACTOR, MIN_POOL)


def rank(
    conn: Connection,
    ranker: Ranker | PendingRanker,
    kind: str,
    k: int,
    project: str | None,
    types: list[str] | None,
    superseded_since: datetime | None = None,
    where: metadata.Where = (),
    text_found: list[search.Scored] | None = None,
    near_found: vectors.Nearest | None = None,
    replaced_out: dict[int, list[Any]] | None = None,
    withheld_out: dict[int, float] | None = None,
) -> list[Hit]:
    """The scored candidates of one kind, best first, each hit's score the fused one in
    [0, 1] — a post-filter (a tier, a per-source cap) may drop some and keep the order.
    ``where`` (memories only): metadata conditions, applied to both candidate lists before
    their cut (in the full-text query; as the set of matching ids for the vectors).
    A ``PendingRanker``'s query vector is waited for after the full-text search (it is being
    computed meanwhile), except in semantic mode, where that search runs only without it.
    ``text_found``: this ranking's full-text candidates, already searched (``text_candidates``);
    ``near_found``: its nearest vectors, already searched (``nearest_ahead``; not used under
    a ``where``, whose allowed ids it did not apply). ``replaced_out``: see
    ``recall_hits.memory_hits``. ``withheld_out``: collects the memories left out as their row
    MAC fails, with their score (``withheld_count`` says which of them would have been served)."""
    pool = pool_size(k)
    text_scored: list[search.Scored] = []
    if ranker.mode == "semantic":
        ranker = settled(ranker)
    if text_found is not None:
        text_scored = text_found
    elif ranker.mode != "semantic" or not settled(ranker).semantic:
        text_scored = text_candidates(
            conn, ranker, kind, k, project, types, superseded_since, where
        )
    raw = {s.id: s.score for s in text_scored}
    ranker = settled(ranker)
    meaning: dict[int, float] = {}
    near_ids: list[int] = []
    weight = 0.0
    if ranker.semantic and ranker.mode != "text":
        assert ranker.query_vector is not None and ranker.model is not None
        weight = 1.0 if ranker.mode == "semantic" else ranker.semantic_weight
        allowed = (
            metadata.matching_ids(conn, project, where)
            if where and kind == vectors.MEMORY
            else None
        )
        if near_found is not None and not where and near_found.asked >= pool:
            near = vectors.INDEX.with_extra(near_found, ranker.query_vector, list(raw))
        else:
            near = vectors.INDEX.neighbours(
                conn, kind, ranker.model, ranker.query_vector, project, pool, list(raw), allowed
            )
        near_ids = near.ids[: near.nearest]
        meaning = recall_fusion.meaning(ranker.query_vector, near)
    ids = list(dict.fromkeys([s.id for s in text_scored] + near_ids))
    # Ranking reads only what it ranks on (filters and words); the full rows, with their
    # provenance and MAC, are read for the few served.
    found = [
        f
        for f in facts(conn, kind, ids, dated=superseded_since is not None)
        if passes(f, kind, project, types, superseded_since)
    ]
    text = recall_fusion.text_scores(
        [search.Scored(f.id, raw[f.id]) for f in found if f.id in raw],
        {f.id: f.content for f in found},
        ranker.terms,
        recall_fusion.text_gate(weight),
    )
    fused: list[search.Scored] = []
    for f in found:
        if f.id not in raw and f.id not in meaning:
            continue  # neither its words nor its meaning match the query
        score = weight * meaning.get(f.id, 0.0) + (1.0 - weight) * text.get(f.id, 0.0)
        if kind == vectors.MEMORY and f.status == "superseded":
            score *= SUPERSEDED_WEIGHT
        fused.append(search.Scored(f.id, score))
    fused.sort(key=lambda s: (-s.score, -s.id))
    want = max(k, 1)
    if kind != vectors.MEMORY:
        return chunk_hits(fused[:want], found)
    # Only the memories about to be served are read in full and checked (a MAC per row served,
    # not per candidate): one that fails is left out and the next takes its place.
    served: list[Hit] = []
    start = 0
    while len(served) < want and start < len(fused):
        part = fused[start : start + want - len(served) + SPARE]
        start += len(part)
        rows: dict[int, Any] = {}
        for hit in memory_hits(conn, part, rows, replaced_out):
            if len(served) >= want:
                continue
            if ranker.guard is None or ranker.guard.memory_ok(rows[hit.id]):
                served.append(hit)
            elif withheld_out is not None:
                withheld_out[hit.id] = hit.score
    return served


def withheld_count(withheld: dict[int, float], served: list[Hit], slots: int) -> int:
    """How many of the withheld memories would have been among the ``slots`` served: all of
    them when fewer were served, else those scoring at least the last one served (ranking
    looks deeper than it serves: a tampered row below the cut was never going to be shown)."""
    if len(served) < slots:
        return len(withheld)
    cut = min(hit.score for hit in served)
    return sum(1 for score in withheld.values() if score >= cut)


def text_candidates(
    conn: Connection,
    ranker: Ranker | PendingRanker,
    kind: str,
    k: int,
    project: str | None,
    types: list[str] | None,
    superseded_since: datetime | None = None,
    where: metadata.Where = (),
) -> list[search.Scored]:
    """The full-text candidates ``rank`` fuses, for the same arguments (searched ahead by a
    recall while its query is embedded)."""
    return search.search(
        conn,
        search.MEMORIES if kind == vectors.MEMORY else search.CHUNKS,
        ranker.terms,
        pool_size(k),
        project,
        types,
        superseded=bool(superseded_since),
        where=where if kind == vectors.MEMORY else (),
    )


Ahead = dict[tuple[str | None, str], vectors.Nearest]


def nearest_ahead(
    rt: Runtime,
    conn: Connection,
    mode: str,
    conditions: metadata.Where,
    wanted: dict[tuple[str | None, str], int],
) -> Callable[[Ranker], Ahead] | None:
    """The vector searches of the rankings ``wanted`` ((scope, kind) → k), for the worker that
    embeds the query to run once it has the vector while the caller searches full text; their
    matrices are brought up to date here first, in the caller's transaction. ``rank`` takes
    each result as ``near_found``. None (each ranking searches for itself) before the embedder
    has loaded, or under a metadata filter (its allowed ids are a query)."""
    embedder = rt.embedders.loaded
    if mode == "text" or conditions or embedder is None:
        return None
    model, dimension = embedder.model_id, embedder.dimension
    kinds = {kind for _, kind in wanted}
    generation = vectors.current_generation(conn)  # read once for every matrix
    matrices = {
        kind: vectors.INDEX.matrix(conn, kind, model, dimension, generation) for kind in kinds
    }

    def nearest_all(ranker: Ranker) -> Ahead:
        if ranker.model != model or ranker.query_vector is None:
            return {}
        return {
            (scope, kind): vectors.INDEX.nearest(
                matrices[kind], ranker.query_vector, scope, pool_size(k)
            )
            for (scope, kind), k in wanted.items()
        }

    return nearest_all
