"""Audit gaps: memories whose current row is not what their ledger replays to, or that have no
ledger rows at all (the replay itself is in ``replay``).

Incremental scans replay the memories changed since the previous scan (new ids, rows updated
since it started, ids named by ledger rows it had not seen, and on PostgreSQL every row
written since its snapshot, however its times read) and the gaps it found; ``--full``
replays every memory, as does an incremental scan that finds fewer memories at or below the
previous scan's highest id than that scan counted (memwarden never deletes a memory row).
Rows are read through the driver: this check reads the whole ledger.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Generic, TypeVar

from sqlalchemy import Connection, Select, String, cast, exists, func, select

from memwarden.db import schema
from memwarden.observability.integrity.context import (
    CheckOutcome,
    ScanContext,
    driver_rows,
    written_since,
)
from memwarden.observability.integrity.findings import Finding
from memwarden.observability.integrity.replay import MemoryRow, Step, replay_problem

M = schema.memories
L = schema.ledger
P = schema.ledger_payloads

BATCH = 1000
# Rows a mutation wrote while the previous scan was starting may carry a time just before its
# start: look back this far so they are not missed.
LOOKBACK = timedelta(minutes=10)
MAX_RECHECK = 10_000


def memory_snapshot(row: Any) -> dict[str, Any]:
    """A memory row as the ledger stores it (what ``core.models.Memory.snapshot`` gives)."""
    return MemoryRow.of([getattr(row, name, None) for name in MemoryRow._fields]).snapshot()


Ident = TypeVar("Ident", int, str)


@dataclass
class GapScan(Generic[Ident]):
    """What a replay found: entities (memory ids, or state entries' ledger names) that differ
    from their ledger, and live rows with no ledger rows at all."""

    what: str = "memory"
    replayed_rows: int = 0
    mismatched: list[Ident] = field(default_factory=list)
    unrecorded: list[Ident] = field(default_factory=list)
    first_reason: str | None = None

    def add(self, ident: Ident, reason: str) -> None:
        self.mismatched.append(ident)
        if self.first_reason is None:
            self.first_reason = f"{self.what} {ident}: {reason}"


# -- reading ----------------------------------------------------------------------------------
def _steps_query() -> Select[Any]:
    return (
        select(L.c.entity_id, L.c.seq, L.c.action, P.c.body)
        .select_from(L.outerjoin(P, P.c.seq == L.c.seq))
        .where(L.c.entity_type == "memory")
        .order_by(L.c.entity_id, L.c.seq)
    )


def grouped_steps(rows: Iterable[tuple[Any, ...]]) -> Iterator[tuple[str, list[Step]]]:
    entity: str | None = None
    steps: list[Step] = []
    for entity_id, seq, action, body in rows:
        if entity_id != entity:
            if entity is not None:
                yield entity, steps
            entity, steps = entity_id, []
        steps.append(Step(seq, action, body))
    if entity is not None:
        yield entity, steps


def _current(conn: Connection, ids: list[int], metadata: bool = True) -> dict[int, MemoryRow]:
    # The snapshot's columns by name: the table has more (the row MAC, and more to come).
    # ``metadata`` False: a store not yet at 0017_metadata (0010_row_macs replays one).
    names = MemoryRow._fields if metadata else MemoryRow._fields[:-1]
    query = select(*(M.c[name] for name in names)).where(M.c.id.in_(ids))
    return {int(values[0]): MemoryRow.of(values) for values in driver_rows(conn, query)}


def _compare(
    conn: Connection,
    groups: list[tuple[str, list[Step]]],
    scan: GapScan[int],
    metadata: bool = True,
) -> None:
    ids = [int(entity) for entity, _ in groups if entity.isdigit()]
    current = _current(conn, ids, metadata) if ids else {}
    for entity, steps in groups:
        scan.replayed_rows += len(steps)
        memory_id = int(entity) if entity.isdigit() else None
        row = current.get(memory_id) if memory_id is not None else None
        reason = replay_problem(row, steps)
        if reason is not None and memory_id is not None:
            scan.add(memory_id, reason)


def replay_all(conn: Connection, *, metadata: bool = True) -> GapScan[int]:
    scan: GapScan[int] = GapScan()
    batch: list[tuple[str, list[Step]]] = []
    for group in grouped_steps(driver_rows(conn, _steps_query(), stream=True)):
        batch.append(group)
        if len(batch) >= BATCH:
            _compare(conn, batch, scan, metadata)
            batch = []
    if batch:
        _compare(conn, batch, scan, metadata)
    unrecorded = select(M.c.id).where(
        ~exists().where(L.c.entity_type == "memory", L.c.entity_id == cast(M.c.id, String))
    )
    scan.unrecorded = [int(i) for i in conn.execute(unrecorded.order_by(M.c.id)).scalars()]
    scan.mismatched.sort()
    return scan


def replay_ids(conn: Connection, memory_ids: Iterable[int]) -> GapScan[int]:
    scan: GapScan[int] = GapScan()
    ordered = sorted(set(memory_ids))
    for offset in range(0, len(ordered), BATCH):
        chunk = ordered[offset : offset + BATCH]
        query = _steps_query().where(L.c.entity_id.in_([str(i) for i in chunk]))
        groups = list(grouped_steps(driver_rows(conn, query)))
        _compare(conn, groups, scan)
        seen = {int(entity) for entity, _ in groups}
        missing = [i for i in chunk if i not in seen]
        if missing:
            exists_now = set(conn.execute(select(M.c.id).where(M.c.id.in_(missing))).scalars())
            scan.unrecorded.extend(i for i in missing if i in exists_now)
    scan.mismatched.sort()
    return scan


def changed_since_previous(ctx: ScanContext) -> set[int]:
    """Memories an incremental scan replays: new ones, ones updated since the previous scan
    began, ones named by ledger rows it had not seen, and the gaps it reported."""
    previous = ctx.previous
    assert previous is not None
    conn = ctx.conn
    ids: set[int] = set(previous.recheck_ids)
    ids.update(conn.execute(select(M.c.id).where(M.c.id > previous.memory_high_id)).scalars())
    since = previous.started_at - LOOKBACK
    ids.update(conn.execute(select(M.c.id).where(M.c.updated_at >= since)).scalars())
    named = select(L.c.entity_id).where(
        L.c.seq > previous.ledger_head_seq, L.c.entity_type == "memory"
    )
    ids.update(int(e) for e in conn.execute(named.distinct()).scalars() if str(e).isdigit())
    unseen = ctx.unseen_snapshot()
    if unseen is not None:
        # A row put back whole to an older version keeps that version's times, but not its
        # row version: any INSERT or UPDATE since the previous scan is among these.
        ids.update(conn.execute(select(M.c.id).where(written_since("memories", unseen))).scalars())
    return {int(i) for i in ids}


# -- the check --------------------------------------------------------------------------------
def check_audit_gaps(ctx: ScanContext) -> CheckOutcome:
    incremental = not ctx.full and ctx.previous is not None and _can_continue(ctx)
    scan = (
        replay_ids(ctx.conn, changed_since_previous(ctx)) if incremental else replay_all(ctx.conn)
    )
    outcome = CheckOutcome(scanned=scan.replayed_rows)
    if scan.mismatched:
        outcome.findings.append(
            Finding.of(
                "audit_gap_replay",
                "critical",
                scan.mismatched,
                f"{len(scan.mismatched)} memories differ from the replay of their ledger (a "
                f"change made without its ledger row, or an edit behind memwarden's back); "
                f"e.g. {scan.first_reason}",
            )
        )
    if scan.unrecorded:
        outcome.findings.append(
            Finding.of(
                "audit_gap_unrecorded",
                "critical",
                scan.unrecorded,
                f"{len(scan.unrecorded)} memories have no ledger rows at all",
            )
        )
    gaps = sorted(set(scan.mismatched) | set(scan.unrecorded))
    # Re-checked by the next incremental scan, so a gap stays reported until it is dealt with.
    outcome.recheck_ids = gaps if len(gaps) <= MAX_RECHECK else []
    return outcome


def _can_continue(ctx: ScanContext) -> bool:
    """The previous run replayed what it should and its list of gaps is complete (otherwise
    this run replays everything)."""
    previous = ctx.previous
    assert previous is not None
    own = next((c for c in previous.checks if c.name == "audit_gaps"), None)
    if own is None or own.status not in ("ok", "findings"):
        return False
    gap_findings = [f for f in previous.findings if f.check.startswith("audit_gap_")]
    if sum(f.count for f in gap_findings) > MAX_RECHECK:
        return False
    if not ctx.is_sqlite and ctx.unseen_snapshot() is None:
        return False  # rows put back since the previous scan could not be told apart
    return not _memories_gone(ctx)


def _memories_gone(ctx: ScanContext) -> bool:
    """Whether memories the previous scan counted are gone (or it kept no count)."""
    previous = ctx.previous
    assert previous is not None
    if previous.memory_count is None:
        return True
    still = ctx.conn.execute(
        select(func.count()).select_from(M).where(M.c.id <= previous.memory_high_id)
    ).scalar_one()
    return int(still) < previous.memory_count
