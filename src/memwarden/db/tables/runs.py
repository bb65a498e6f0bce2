"""Tables: The retrieval harness runs and the nightly pipeline: its runs, steps and lock."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from memwarden.db.tables.base import Id, UTCDateTime, metadata

# The retrieval harness and the nightly pipeline (migration 0007_nightly): each harness run with
# its failing cases (JSON), each nightly run with one row per step, and the run lock of SQLite
# (PostgreSQL holds an advisory lock instead). No foreign key to projects: a run outlives them.
harness_runs = Table(
    "harness_runs",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("started_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime, nullable=False),
    Column("duration_ms", Float, nullable=False),
    Column("fixtures", Text, nullable=False),
    Column("transport", String(16), nullable=False),
    Column("total", Integer, nullable=False),
    Column("passed", Integer, nullable=False),
    Column("pass_rate", Float, nullable=False),
    Column("failures", Text, nullable=False),
    Index("ix_harness_runs_started", "started_at"),
)

nightly_runs = Table(
    "nightly_runs",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("started_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime, nullable=True),
    Column("status", String(12), nullable=False),
    Column("trigger", String(16), nullable=False),
    Column("owner", String(300), nullable=False),
    Column("duration_ms", Float, nullable=True),
    Column("failed_steps", Integer, nullable=False),
    Index("ix_nightly_runs_status", "status"),
)

nightly_steps = Table(
    "nightly_steps",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("run_id", BigInteger, ForeignKey("nightly_runs.id"), nullable=False),
    Column("position", Integer, nullable=False),
    Column("name", String(40), nullable=False),
    Column("status", String(10), nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("duration_ms", Float, nullable=False),
    Column("counts", Text, nullable=False),
    Column("error", Text, nullable=True),
    UniqueConstraint("run_id", "position", name="uq_nightly_steps_position"),
)

nightly_lock = Table(
    "nightly_lock",
    metadata,
    Column("name", String(40), primary_key=True),
    Column("owner", String(300), nullable=False),
    Column("host", String(255), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("heartbeat_at", UTCDateTime, nullable=False),
)
