"""Stamping a new memory with its provenance, its screening and its tier, and finding the
active memory a new one would contradict.

Kept apart from ``memories`` so the write path reads: validate, stamp, insert.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, select

from memwarden.core import lifecycle, provenance, screening, search
from memwarden.core.text import content_terms, words
from memwarden.db import schema

# How alike two statements must be (Jaccard over their words) for the new one to count as a
# correction of the old: close enough to be about the same thing, different in what it says.
CONTRADICTION_SIMILARITY = 0.5
_NEIGHBOURS = 5
_RECENT = 200


@dataclass(frozen=True)
class Stamp:
    status: str
    fields: dict[str, Any]


def stamp(conn: Connection, project: str, type_: str, text: str, status: str) -> Stamp:
    """The provenance columns of a new memory; a flagged text, or an agent's correction of a
    more trusted active memory, is held back as a candidate."""
    source = provenance.current_source()
    reasons = screening.screen(text)
    tier = provenance.tier_of(source.kind, bool(reasons))
    proposes = None
    if source.kind == provenance.AGENT:
        proposes = contradicted(conn, project, type_, text, tier)
    if reasons or proposes is not None:
        status = lifecycle.CANDIDATE
    return Stamp(
        status,
        {
            "source_kind": source.kind,
            "source_actor": source.actor,
            "source_key": source.key,
            "tier": tier,
            "flags": json.dumps(reasons) if reasons else None,
            "independent_reinforcements": 0,
            "proposes": proposes,
        },
    )


def rescreen(text: str, memory_tier: str | None, memory_kind: str | None) -> dict[str, Any]:
    """The tier and flags after a content change."""
    reasons = screening.screen(text)
    if reasons:
        return {"tier": provenance.FLAGGED, "flags": json.dumps(reasons)}
    if memory_tier == provenance.FLAGGED:
        return {"tier": provenance.tier_of(memory_kind or provenance.AGENT, False), "flags": None}
    return {}


def contradicted(conn: Connection, project: str, type_: str, text: str, tier: str) -> int | None:
    """An active memory of a higher tier that says something close to ``text`` but not it."""
    mine = set(words(text))
    if not mine:
        return None
    # The full-text neighbours (which may miss a statement that differs in a selective word),
    # and the most recent active memories of the project.
    m = schema.memories
    # Any type: a correction filed under another type still contradicts.
    hits = search.search(conn, search.MEMORIES, content_terms(text), _NEIGHBOURS, project)
    recent = (
        select(m.c.id)
        .where(m.c.project == project, m.c.status == lifecycle.ACTIVE)
        .order_by(m.c.id.desc())
        .limit(_RECENT)
    )
    ids = {hit.id for hit in hits} | {int(i) for i in conn.execute(recent).scalars()}
    if not ids:
        return None
    rows = conn.execute(
        select(m.c.id, m.c.content, m.c.tier, m.c.status)
        .where(m.c.id.in_(sorted(ids)))
        .order_by(m.c.id)
    )
    for row in rows:
        if row.status != lifecycle.ACTIVE or provenance.rank(row.tier) <= provenance.rank(tier):
            continue
        theirs = set(words(row.content))
        if theirs == mine:
            continue
        if len(mine & theirs) / len(mine | theirs) >= CONTRADICTION_SIMILARITY:
            return int(row.id)
    return None


def counts_as_independent(memory_kind: str | None, actor: str | None, key: str | None) -> bool:
    """Whether a reinforcement by the current source is independent of the memory's writer."""
    mine = provenance.current_source()
    return mine.identity != provenance.identity_of(memory_kind, actor, key)
