"""Row MACs: every memory and project-state row whose MAC does not match its fields.

Reads check each row they serve; this check looks at every row (on PostgreSQL a default scan,
every row written since the previous scan: ``ScanContext.rows_since_previous``), so an admin
sees each tampered row by its id (and ``--fix`` restores it) before anyone happens to read it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, Connection, Select, Table, select

from memwarden.audit.chain import ChainKey
from memwarden.audit.rowmac import RowMacs
from memwarden.db import schema
from memwarden.observability.integrity.context import CheckOutcome, ScanContext
from memwarden.observability.integrity.findings import Finding

CHECK = "row_macs"
MEMORIES = "tampered_memories"
STATE = "tampered_state"
_BATCH = 2000


@dataclass
class Tampered:
    memories: list[int] = field(default_factory=list)
    state: list[tuple[int, str]] = field(default_factory=list)  # (row id, project/category/key)
    scanned: int = 0


RowFilter = Callable[[Table], ColumnElement[bool] | None]


def find_tampered(conn: Connection, key: ChainKey, only: RowFilter | None = None) -> Tampered:
    """Every row whose MAC fails; ``only``: a filter per table to the rows worth checking
    (an incremental scan's rows written since the previous one), None for every row."""
    macs = RowMacs(key)
    found = Tampered()
    M, S = schema.memories, schema.project_state
    for row in conn.execute(_rows(M, only)).yield_per(_BATCH):
        found.scanned += 1
        if not macs.memory_ok(row):
            found.memories.append(int(row.id))
    for row in conn.execute(_rows(S, only)).yield_per(_BATCH):
        found.scanned += 1
        if not macs.state_ok(row):
            found.state.append((int(row.id), f"{row.project}/{row.category}/{row.key}"))
    return found


def _rows(table: Table, only: RowFilter | None) -> Select[Any]:
    query = select(table).order_by(table.c.id)
    condition = only(table) if only is not None else None
    return query if condition is None else query.where(condition)


def check_row_macs(ctx: ScanContext) -> CheckOutcome:
    found = find_tampered(
        ctx.conn, ctx.chain.key, lambda table: ctx.rows_since_previous(CHECK, table)
    )
    outcome = CheckOutcome(scanned=found.scanned)
    if found.memories:
        outcome.findings.append(
            Finding.of(
                MEMORIES,
                "critical",
                found.memories,
                f"{len(found.memories)} memories were changed outside memwarden (their row MAC "
                "does not match): withheld from recall; --fix restores them from the ledger",
            )
        )
    if found.state:
        outcome.findings.append(
            Finding.of(
                STATE,
                "critical",
                [name for _, name in found.state],
                f"{len(found.state)} project state entries were changed outside memwarden "
                "(their row MAC does not match): withheld; --fix restores them from the ledger",
            )
        )
    return outcome
