"""Relational drift: references to rows that are gone, duplicate memories, broken supersede chains.

Each query walks an index (the ones migration 0006 adds make the duplicate and the missing-
successor checks index-only), so the checks stay fast at millions of memories. The ``find_*``
functions return every offending id, oldest first, for the repairs; the checks wrap them in
findings.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, func, or_, select

from memwarden.db import schema
from memwarden.observability.integrity.context import CheckOutcome, ScanContext
from memwarden.observability.integrity.findings import Finding

M = schema.memories
C = schema.source_chunks
D = schema.documents
P = schema.projects
S = schema.project_state

ACTIVE = "active"
SUPERSEDED = "superseded"


# -- queries (also used by the repairs) -----------------------------------------------------------
# No ORDER BY in these queries: SQLite would walk the whole table in id order to honour it
# instead of the small index the filter needs; the few rows found are sorted here.
def find_dangling_chunk_refs(conn: Connection) -> list[int]:
    """Memories citing a source chunk that does not exist."""
    query = (
        select(M.c.id)
        .select_from(M.outerjoin(C, C.c.id == M.c.source_chunk_id))
        .where(M.c.source_chunk_id.is_not(None), C.c.id.is_(None))
    )
    return sorted(int(i) for i in conn.execute(query).scalars())


def find_orphan_chunks(conn: Connection) -> list[int]:
    """Source chunks whose document is gone."""
    query = (
        select(C.c.id)
        .select_from(C.outerjoin(D, D.c.id == C.c.document_id))
        .where(D.c.id.is_(None))
    )
    return sorted(int(i) for i in conn.execute(query).scalars())


def find_orphan_state(conn: Connection) -> list[str]:
    """Project state entries of a project that does not exist, as ``project/category/key``."""
    query = (
        select(S.c.id, S.c.project, S.c.category, S.c.key)
        .select_from(S.outerjoin(P, P.c.name == S.c.project))
        .where(P.c.name.is_(None))
    )
    rows = sorted(conn.execute(query), key=lambda row: int(row.id))
    return [f"{row.project}/{row.category}/{row.key}" for row in rows]


def find_duplicate_groups(conn: Connection) -> list[list[int]]:
    """Active memories saying the same thing (project, type and content hash), each group
    oldest first. The groups are found from the (status, project, type, content_hash) index
    alone; only then are their members read."""
    groups = conn.execute(
        select(M.c.project, M.c.type, M.c.content_hash)
        .where(M.c.status == ACTIVE)
        .group_by(M.c.project, M.c.type, M.c.content_hash)
        .having(func.count() > 1)
    ).all()
    found: list[list[int]] = []
    for project, type_, digest in groups:
        members = conn.execute(
            select(M.c.id, M.c.created_at).where(
                M.c.status == ACTIVE,
                M.c.project == project,
                M.c.type == type_,
                M.c.content_hash == digest,
            )
        ).all()
        found.append([int(row.id) for row in sorted(members, key=lambda r: (r.created_at, r.id))])
    return sorted(found)


@dataclass(frozen=True)
class SupersedeBreaks:
    dangling: list[int]  # superseded by a memory that does not exist
    loops: list[int]  # on a cycle of supersede links
    missing_successor: list[int]  # superseded, but by nothing


def find_supersede_breaks(conn: Connection) -> SupersedeBreaks:
    successor = M.alias("successor")
    # Only links whose successor is missing or itself superseded can dangle or close a loop:
    # a healthy chain ends at a successor without a successor, so this returns few rows.
    links = (
        select(
            M.c.id,
            M.c.superseded_by,
            successor.c.id.label("found"),
            successor.c.superseded_by.label("next"),
        )
        .select_from(M.outerjoin(successor, successor.c.id == M.c.superseded_by))
        .where(M.c.superseded_by.is_not(None))
        .where(or_(successor.c.id.is_(None), successor.c.superseded_by.is_not(None)))
    )
    dangling: list[int] = []
    edges: dict[int, int] = {}
    for row in conn.execute(links):
        if row.found is None:
            dangling.append(int(row.id))
        else:
            edges[int(row.id)] = int(row.superseded_by)
    missing = select(M.c.id).where(M.c.status == SUPERSEDED, M.c.superseded_by.is_(None))
    return SupersedeBreaks(
        dangling=sorted(dangling),
        loops=sorted(_cycle_members(edges)),
        missing_successor=sorted(int(i) for i in conn.execute(missing).scalars()),
    )


def _cycle_members(edges: dict[int, int]) -> set[int]:
    """The nodes of a functional graph (one outgoing edge each) that lie on a cycle."""
    on_cycle: set[int] = set()
    done: set[int] = set()
    for start in edges:
        if start in done:
            continue
        path: dict[int, int] = {}  # node -> its position on the current walk
        node: int | None = start
        while node is not None and node not in done and node not in path:
            path[node] = len(path)
            node = edges.get(node)
        if node is not None and node in path:
            order = list(path)
            on_cycle.update(order[path[node] :])
        done.update(path)
    return on_cycle


# -- checks -----------------------------------------------------------------------------------
def check_chunk_refs(ctx: ScanContext) -> CheckOutcome:
    found = find_dangling_chunk_refs(ctx.conn)
    return _outcome(
        ctx.count("memories"),
        Finding.of(
            "dangling_chunk_refs",
            "warning",
            found,
            f"{len(found)} memories cite a source chunk that does not exist",
        )
        if found
        else None,
    )


def check_orphan_chunks(ctx: ScanContext) -> CheckOutcome:
    found = find_orphan_chunks(ctx.conn)
    return _outcome(
        ctx.count("source_chunks"),
        Finding.of(
            "orphan_chunks",
            "warning",
            found,
            f"{len(found)} source chunks belong to a missing document",
        )
        if found
        else None,
    )


def check_orphan_state(ctx: ScanContext) -> CheckOutcome:
    found = find_orphan_state(ctx.conn)
    return _outcome(
        ctx.count("project_state"),
        Finding.of(
            "orphan_state",
            "warning",
            found,
            f"{len(found)} project state entries belong to a project that does not exist",
        )
        if found
        else None,
    )


def check_duplicates(ctx: ScanContext) -> CheckOutcome:
    groups = find_duplicate_groups(ctx.conn)
    surplus = [memory_id for group in groups for memory_id in group[1:]]
    return _outcome(
        ctx.count("memories"),
        Finding.of(
            "duplicate_memories",
            "warning",
            surplus,
            f"{len(surplus)} active memories repeat an older active memory of the same project, "
            f"type and content ({len(groups)} groups)",
        )
        if surplus
        else None,
    )


def check_supersede_chains(ctx: ScanContext) -> CheckOutcome:
    breaks = find_supersede_breaks(ctx.conn)
    outcome = CheckOutcome(scanned=ctx.count("memories"))
    if breaks.dangling:
        outcome.findings.append(
            Finding.of(
                "supersede_dangling",
                "warning",
                breaks.dangling,
                f"{len(breaks.dangling)} memories are superseded by a memory that does not exist",
            )
        )
    if breaks.loops:
        outcome.findings.append(
            Finding.of(
                "supersede_loops",
                "warning",
                breaks.loops,
                f"{len(breaks.loops)} memories lie on a loop of supersede links",
            )
        )
    if breaks.missing_successor:
        outcome.findings.append(
            Finding.of(
                "supersede_missing_successor",
                "warning",
                breaks.missing_successor,
                f"{len(breaks.missing_successor)} superseded memories name no successor",
            )
        )
    return outcome


def _outcome(scanned: int, finding: Finding | None) -> CheckOutcome:
    return CheckOutcome(findings=[finding] if finding is not None else [], scanned=scanned)


__all__ = [
    "SupersedeBreaks",
    "check_chunk_refs",
    "check_duplicates",
    "check_orphan_chunks",
    "check_orphan_state",
    "check_supersede_chains",
    "find_dangling_chunk_refs",
    "find_duplicate_groups",
    "find_orphan_chunks",
    "find_orphan_state",
    "find_supersede_breaks",
]
