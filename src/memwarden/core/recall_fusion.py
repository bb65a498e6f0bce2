"""Recall's scores: meaning within the query's neighbourhood, and full text gated by how much
of the query a hit holds — the two halves ``recall_rank.rank`` fuses as
``w · meaning + (1 − w) · text``.

The constants were tuned on bench/recall_quality.py's tuning people (docs/recall.md); the
benchmark's sweep and tests patch them on this module, so they are read here at call time.
"""

from __future__ import annotations

import numpy as np

from memwarden.core import search, vectors
from memwarden.core.embedding import Vectors
from memwarden.core.text import held_by

# Below this cosine a candidate shares no meaning with the query worth showing (all-MiniLM-L6-v2
# puts unrelated sentences at about 0 to 0.15): it can still rank by its words.
MIN_COSINE = 0.2
# Meaning is scored against the query's neighbourhood (``meaning``): its nearest
# CENTRE_NEIGHBOURS items, when there are at least MIN_NEIGHBOURS, have CENTRE_SHARE of their
# mean taken out. Tuned on the evaluation set's tuning people (docs/recall.md).
CENTRE_NEIGHBOURS = 50
MIN_NEIGHBOURS = 20
CENTRE_SHARE = 0.8
# Fused, full text counts only for hits holding at least this share of the query's terms.
TEXT_COVERAGE_GATE = 0.75


def text_gate(weight: float) -> float:
    """The share of the query's terms a text hit must hold to count: the gate when meaning is
    fused in (``weight`` > 0), none for full text alone."""
    return TEXT_COVERAGE_GATE if weight > 0 else 0.0


def text_scores(
    hits: list[search.Scored], contents: dict[int, str], terms: list[str], gate: float = 0.0
) -> dict[int, float]:
    """Full-text scores brought to [0, 1] (the best hit 1), weighed by the share of the
    query's terms the hit holds, so that a hit matching one word of a long question cannot
    top a list it only leads by scale. A hit holding less than ``gate`` of the terms scores 0."""
    top = max((hit.score for hit in hits), default=0.0)
    if top <= 0:
        return {hit.id: 0.0 for hit in hits}
    wanted = set(terms)
    held_in = held_by(wanted)
    scores = {}
    for h in hits:
        held = held_in(contents[h.id])
        coverage = len(held) / len(wanted) if wanted else 1.0
        # Squared: a hit holding half the query's words keeps a quarter of its score. Tuned on
        # the evaluation set: distractors sharing one or two words with a paraphrase were what
        # pushed the answer out (docs/recall.md).
        scores[h.id] = (h.score / top) * coverage**2 if coverage >= gate else 0.0
    return scores


def meaning(query: Vectors, near: vectors.Neighbours) -> dict[int, float]:
    """Each neighbour's meaning score in [0, 1]: its cosine with the query once the mean of
    the query's nearest neighbourhood is (mostly) taken out of both, relative to the best.

    Why centre: every memory about the same person, project or topic sits close to a query
    naming it, so raw cosines bunch together and the shared subject decides the order more
    than what is asked. Taking out what the neighbourhood has in common leaves what tells its
    members apart (tuned on the evaluation set's tuning people: paraphrase recall@5
    0.85 → 0.90; docs/recall.md). Too few neighbours to have a common part: raw cosines.
    Items under ``MIN_COSINE`` (raw) share no meaning with the query: 0."""
    if near.vectors.shape[0] == 0:
        return {}
    raw = near.cosines.astype(np.float64)
    scored = raw
    hood = near.vectors[: min(near.nearest, CENTRE_NEIGHBOURS)].astype(np.float64)
    if hood.shape[0] >= MIN_NEIGHBOURS:
        centre = CENTRE_SHARE * hood.mean(axis=0)
        q = query.astype(np.float64) - centre
        moved = near.vectors.astype(np.float64) - centre
        lengths = np.linalg.norm(moved, axis=1) * max(float(np.linalg.norm(q)), 1e-12)
        scored = (moved @ q) / np.maximum(lengths, 1e-12)
    related = raw >= MIN_COSINE
    best = float(scored[related].max()) if related.any() else 0.0
    if best <= 0:
        return {}
    return {
        item: max(float(value), 0.0) / best
        for item, value, ok in zip(near.ids, scored, related, strict=True)
        if ok
    }
