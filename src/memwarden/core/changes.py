"""Awareness of change: what a recalled memory replaced, or what replaced it.

A memory that superseded another carries ``supersedes`` (each predecessor's id, content, when
it was superseded and by whom, from the ledger); a superseded memory a recall included carries
``replaced`` (its successor, when, by whom) — so an agent can tell a changed fact from a new one.
"""

from __future__ import annotations

from typing import Any, Protocol

from sqlalchemy import Connection, select

from memwarden.core.screening import neutralise
from memwarden.db import schema
from memwarden.db.lists import in_list

M, L = schema.memories, schema.ledger


class _Hit(Protocol):
    kind: str
    id: int
    provenance: dict[str, Any]


def _supersede_entries(conn: Connection, ids: list[int]) -> dict[int, tuple[str, str]]:
    """The latest ``superseded`` ledger entry of each memory: (when, actor)."""
    if not ids:
        return {}
    rows = conn.execute(
        select(L.c.entity_id, L.c.ts, L.c.actor)
        .where(
            L.c.entity_type == "memory",
            in_list(conn, L.c.entity_id, [str(i) for i in ids]),
            L.c.action == "superseded",
        )
        .order_by(L.c.seq)
    )
    return {int(r.entity_id): (r.ts, r.actor) for r in rows}


class _Guard(Protocol):
    def memory_ok(self, row: Any) -> bool: ...


def annotate(
    conn: Connection,
    hits: list[Any],
    guard: _Guard | None = None,
    replaced: dict[int, list[Any]] | None = None,
) -> None:
    """Add ``supersedes`` / ``replaced`` to the provenance of memory hits, in place. With a
    ``guard``, a predecessor whose row MAC fails is left out (its content is not served).
    ``replaced``: the predecessors' rows already read on this connection, by successor id
    (``recall_hits.memory_hits``); only the hits it lacks are looked up here."""
    memory_ids = [h.id for h in hits if h.kind == "memory"]
    if not memory_ids:
        return
    known = replaced or {}
    predecessors = [row for i in memory_ids for row in known.get(i, ())]
    unknown = [i for i in memory_ids if i not in known]
    if unknown:
        predecessors += conn.execute(
            select(M).where(in_list(conn, M.c.superseded_by, unknown))
        ).all()
    if guard is not None:
        predecessors = [p for p in predecessors if guard.memory_ok(p)]
    superseded = [h for h in hits if h.kind == "memory" and h.provenance.get("superseded_by")]
    entries = _supersede_entries(
        conn, [int(p.id) for p in predecessors] + [h.id for h in superseded]
    )
    by_successor: dict[int, list[dict[str, Any]]] = {}
    for p in sorted(predecessors, key=lambda p: int(p.id)):
        at, actor = entries.get(int(p.id), (None, None))
        by_successor.setdefault(int(p.superseded_by), []).append(
            {"memory_id": int(p.id), "content": neutralise(p.content), "at": at, "by": actor}
        )
    for hit in hits:
        if hit.kind != "memory":
            continue
        if hit.id in by_successor:
            hit.provenance["supersedes"] = by_successor[hit.id]
        if hit.provenance.get("status") == "superseded":
            at, actor = entries.get(hit.id, (None, None))
            hit.provenance["replaced"] = {
                "by_memory": hit.provenance.get("superseded_by"),
                "at": at,
                "by": actor,
            }


class _Target:
    """One memory as a recall hit, so ``annotate`` can tell what it replaced."""

    kind = "memory"

    def __init__(self, memory_id: int) -> None:
        self.id = memory_id
        self.provenance: dict[str, Any] = {}


def supersedes(
    conn: Connection, memory_id: int, guard: _Guard | None = None
) -> list[dict[str, Any]]:
    """What ``memory_id`` replaced (as recall's ``supersedes``): the dashboard's memory page."""
    target = _Target(memory_id)
    annotate(conn, [target], guard)
    return list(target.provenance.get("supersedes", []))
