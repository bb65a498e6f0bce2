"""Helpers the integrity tests share: raw access that bypasses memwarden, and a "buggy writer"
that bypasses its guards but still records its change on the ledger."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from typing import Any

import sqlalchemy as sa

from conftest import raw_engine
from memwarden import Memwarden
from memwarden.core import memories
from memwarden.core.models import Memory
from memwarden.core.runtime import Mutation
from memwarden.db import schema
from memwarden.observability.integrity import Finding, IntegrityReport

M = schema.memories


@contextmanager
def raw(mw: Memwarden) -> Iterator[sa.Connection]:
    """Someone with write access to the database and no regard for its rules: their own
    engine, foreign keys unchecked, one transaction."""
    engine = raw_engine(mw.settings)
    try:
        with engine.begin() as conn:
            if engine.dialect.name == "sqlite":
                # Before any write: the sqlite3 module only opens its transaction at the first
                # write, and the pragma is a no-op inside one.
                conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
            else:
                conn.exec_driver_sql("SET session_replication_role = replica")
            yield conn
    finally:
        engine.dispose()


def drop_live_guard(mw: Memwarden) -> None:
    """Drop the unique index that keeps one live memory per statement (as a careless restore
    might): duplicates can then be written."""
    with raw(mw) as conn:
        conn.exec_driver_sql("DROP INDEX uq_memories_live_content")


def sign(m: Mutation, memory: Memory) -> None:
    """The row MAC memwarden's own writer gives a row it writes."""
    mac = m.guard.macs.memory(memory)
    m.conn.execute(sa.update(M).where(M.c.id == memory.id).values(mac=mac))


def recorded_update(mw: Memwarden, memory_id: int, **values: Any) -> None:
    """Change a memory's row with plain SQL, recording the change on the ledger as memwarden
    would: drift from a writer that skipped the lifecycle's checks, not from a hidden edit."""
    with mw.runtime.mutation() as m:
        before = memories.load(m.conn, memory_id)
        m.conn.execute(sa.update(M).where(M.c.id == memory_id).values(**values))
        after = memories.load(m.conn, memory_id)
        sign(m, after)
        m.record(
            "memory", memory_id, before.project, "updated", before.snapshot(), after.snapshot()
        )


def recorded_copy(mw: Memwarden, memory_id: int) -> int:
    """Insert a second active row saying what ``memory_id`` says, with its creation recorded
    (possible only once the live guard is gone)."""
    with mw.runtime.mutation() as m:
        source = memories.load(m.conn, memory_id)
        values = {k: v for k, v in asdict(source).items() if k not in ("id", "mac", "tampered")}
        values.update(status="active", superseded_by=None, created_at=m.now, updated_at=m.now)
        new_id = int(m.conn.execute(sa.insert(M).values(**values).returning(M.c.id)).scalar_one())
        copy = memories.load(m.conn, new_id)
        sign(m, copy)
        m.record("memory", new_id, copy.project, "created", None, copy.snapshot())
    return new_id


def counts(report: IntegrityReport) -> dict[str, int]:
    return {f.check: f.count for f in report.findings}


def finding(report: IntegrityReport, check: str) -> Finding:
    found = report.run.finding(check)
    assert found is not None, f"no {check} finding in {counts(report)}"
    return found


def last_row(mw: Memwarden, memory_id: int) -> tuple[str, str, str | None]:
    record = mw.history(memory_id)[-1]
    return record.action, record.actor, record.note
