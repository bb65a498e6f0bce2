"""Tables: The integrity scan: its runs and their findings."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    String,
    Table,
    Text,
)

from memwarden.db.tables.base import Id, UTCDateTime, metadata

# The integrity scan (migration 0006_integrity): each run, with how every check went and where
# the next incremental run continues (the ledger row verified up to, the memory ids seen, the
# audit gaps to look at again), and its findings.
integrity_runs = Table(
    "integrity_runs",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("started_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime, nullable=True),
    Column("full", Boolean, nullable=False),
    Column("status", String(10), nullable=False),
    Column("ledger_verified_seq", BigInteger, nullable=False),
    Column("ledger_verified_tag", String(64), nullable=True),
    Column("ledger_head_seq", BigInteger, nullable=False),
    Column("memory_high_id", BigInteger, nullable=False),
    Column("checks", Text, nullable=False),
    Column("repairs", Text, nullable=False),
    Column("recheck_ids", Text, nullable=False),
    Column("error", Text, nullable=True),
    # PostgreSQL: the scan's snapshot and text search configuration digest (0021).
    Column("row_snapshot", Text, nullable=True),
    Column("fulltext_config", String(64), nullable=True),
    # How many memories the scan saw: the next one finds rows deleted under it (0023).
    Column("memory_count", BigInteger, nullable=True),
    Index("ix_integrity_runs_started", "started_at"),
)

integrity_findings = Table(
    "integrity_findings",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("run_id", BigInteger, ForeignKey("integrity_runs.id"), nullable=False),
    Column("check_name", String(64), nullable=False),
    Column("severity", String(10), nullable=False),
    Column("count", BigInteger, nullable=False),
    Column("examples", Text, nullable=False),
    Column("message", Text, nullable=False),
    Index("ix_integrity_findings_run", "run_id"),
)
