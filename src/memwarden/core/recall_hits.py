"""What recall reads of its candidates: the few facts ranking needs (``Fact``: filters and
words, for every candidate) and the full rows of those served (``Hit``, with provenance).

Two reads of memories because ranking looks at ~100 candidates and serves ~10: reading every
candidate's full row (provenance, document, MAC) was the largest cost of a recall after the
query's embedding. A chunk is read once: its content, the bulk of its row, is read for its
words anyway, and it has no MAC to check.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Select, or_, select

from memwarden.core import recall_trust, rerank, search, vectors
from memwarden.db import schema
from memwarden.db.lists import in_param


@dataclass(frozen=True)
class Hit:
    kind: str  # memory or chunk
    id: int
    score: float
    content: str
    project: str
    provenance: dict[str, Any]
    tier: str | None = None  # set by recall_trust.annotate
    source: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


_C = schema.source_chunks
_CHUNK_SERVED = (_C.c.id, _C.c.project, _C.c.content, _C.c.document_id, _C.c.heading, _C.c.ordinal)


@dataclass(frozen=True)
class Fact:
    """What ranking needs of a candidate: its filters and its words."""

    id: int
    project: str
    content: str
    status: str = "active"
    type: str | None = None
    updated_at: datetime | None = None
    row: Any = None  # a chunk's row, all ``chunk_hits`` serves of it (no second read)


def facts(conn: Connection, kind: str, ids: list[int], dated: bool) -> list[Fact]:
    """``dated``: read ``updated_at`` too (only to keep recently superseded memories: parsing
    a timestamp per candidate is a visible share of a recall's time)."""
    if not ids:
        return []
    rows = conn.execute(_facts_query(conn.dialect.name, kind, dated), {"ids": ids})
    if kind == vectors.MEMORY:
        return [
            Fact(r.id, r.project, r.content, r.status, r.type, r.updated_at if dated else None)
            for r in rows
        ]
    return [Fact(r.id, r.project, r.content, row=r) for r in rows]


@functools.cache
def _facts_query(dialect: str, kind: str, dated: bool) -> Select[Any]:
    if kind == vectors.MEMORY:
        m = schema.memories
        columns = [m.c.id, m.c.project, m.c.content, m.c.status, m.c.type]
        query = select(*columns, *([m.c.updated_at] if dated else []))
        return query.where(in_param(dialect, m.c.id, "ids"))
    # A chunk's few other columns cost little beside its content, which ranking reads anyway
    # to weigh its words: reading them here spares serving a statement of its own.
    c, d = schema.source_chunks, schema.documents
    return (
        select(*_CHUNK_SERVED, d.c.uri)
        .select_from(c.join(d, d.c.id == c.c.document_id))
        .where(in_param(dialect, c.c.id, "ids"))
    )


def passes(
    fact: Fact,
    kind: str,
    project: str | None,
    types: list[str] | None,
    superseded_since: datetime | None,
) -> bool:
    """Whether a candidate may be recalled: in the project, active (or superseded since
    ``superseded_since``), of one of ``types``."""
    if project is not None and fact.project != project:
        return False
    if kind == vectors.MEMORY:
        recent_change = (
            fact.status == "superseded"
            and superseded_since is not None
            and fact.updated_at is not None
            and fact.updated_at >= superseded_since
        )
        if fact.status != "active" and not recent_change:
            return False
        if types and fact.type not in types:
            return False
    return True


def memory_hits(
    conn: Connection,
    scored: list[search.Scored],
    rows_out: dict[int, Any] | None = None,
    replaced_out: dict[int, list[Any]] | None = None,
) -> list[Hit]:
    """``rows_out`` receives each hit's row, for the MAC check of those finally served.
    ``replaced_out`` receives, for each memory asked for, the rows of the memories it
    superseded (``changes.annotate`` then needs no statement of its own): read in the same
    statement, one round trip fewer for every recall."""
    if not scored:
        return []
    ids = [s.id for s in scored]
    asked = set(ids)
    rows: dict[int, Any] = {}
    replaced: dict[int, list[Any]] = {memory_id: [] for memory_id in ids}
    query = _hits_query(conn.dialect.name, with_replaced=replaced_out is not None)
    for found in conn.execute(query, {"ids": ids}):
        if found.id in asked:
            rows[found.id] = found
        if found.superseded_by in asked:
            replaced[found.superseded_by].append(found)
    if rows_out is not None:
        rows_out.update(rows)
    if replaced_out is not None:
        # The latest read wins: a hit read again (a second, deeper ranking) is served from
        # that statement's row, so what it replaced must come from the same statement.
        replaced_out.update(replaced)
    hits = []
    for item in scored:
        row = rows.get(item.id)
        if row is None:
            continue
        hits.append(
            Hit(
                "memory",
                item.id,
                item.score,
                row.content,
                row.project,
                {
                    "memory_id": row.id,
                    "type": row.type,
                    "status": row.status,
                    "confidence": row.confidence,
                    "reinforcement_count": row.reinforcement_count,
                    "superseded_by": row.superseded_by,
                    "source_chunk_id": row.source_chunk_id,
                    "document": row.document_uri,
                    "updated_at": row.updated_at.isoformat(),
                    "metadata": rerank.parse_metadata(row.metadata),
                    # Read here with the row; recall_trust.annotate queries only when absent.
                    **recall_trust.provenance_of(row),
                },
            )
        )
    return hits


@functools.cache
def _hits_query(dialect: str, with_replaced: bool) -> Select[Any]:
    m, c, d = schema.memories, schema.source_chunks, schema.documents
    wanted = in_param(dialect, m.c.id, "ids")
    if with_replaced:
        wanted = or_(wanted, in_param(dialect, m.c.superseded_by, "ids"))
    return (
        select(m, d.c.uri.label("document_uri"))
        .select_from(
            m.outerjoin(c, c.c.id == m.c.source_chunk_id).outerjoin(d, d.c.id == c.c.document_id)
        )
        .where(wanted)
    )


def chunk_hits(scored: list[search.Scored], found: list[Fact]) -> list[Hit]:
    """The chunks ``scored`` as hits, from the rows ``facts`` read (a chunk has no MAC to
    check first: it is served as read)."""
    rows = {f.id: f.row for f in found}
    return [
        Hit(
            "chunk",
            item.id,
            item.score,
            rows[item.id].content,
            rows[item.id].project,
            {
                "chunk_id": item.id,
                "document_id": rows[item.id].document_id,
                "document": rows[item.id].uri,
                "heading": rows[item.id].heading,
                "ordinal": rows[item.id].ordinal,
            },
        )
        for item in scored
        if item.id in rows
    ]
