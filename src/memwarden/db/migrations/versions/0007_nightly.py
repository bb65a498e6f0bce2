"""The retrieval harness and the nightly pipeline: harness runs, nightly runs and their steps,
and the run lock that keeps two nightly runs on SQLite from overlapping.

Revision ID: 0007_nightly
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

from alembic import op
from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Float,
    ForeignKeyConstraint,
    Integer,
    String,
    Text,
    UniqueConstraint,
)

revision = "0007_nightly"
down_revision = "0001"
branch_labels = None
depends_on = None

Id = BigInteger().with_variant(Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "harness_runs",
        Column("id", Id, primary_key=True, autoincrement=True),
        Column("started_at", DateTime(timezone=True), nullable=False),
        Column("finished_at", DateTime(timezone=True), nullable=False),
        Column("duration_ms", Float, nullable=False),
        Column("fixtures", Text, nullable=False),
        Column("transport", String(16), nullable=False),
        Column("total", Integer, nullable=False),
        Column("passed", Integer, nullable=False),
        Column("pass_rate", Float, nullable=False),
        Column("failures", Text, nullable=False),
    )
    op.create_index("ix_harness_runs_started", "harness_runs", ["started_at"])
    op.create_table(
        "nightly_runs",
        Column("id", Id, primary_key=True, autoincrement=True),
        Column("started_at", DateTime(timezone=True), nullable=False),
        Column("finished_at", DateTime(timezone=True), nullable=True),
        Column("status", String(12), nullable=False),
        Column("trigger", String(16), nullable=False),
        Column("owner", String(300), nullable=False),
        Column("duration_ms", Float, nullable=True),
        Column("failed_steps", Integer, nullable=False),
    )
    op.create_index("ix_nightly_runs_status", "nightly_runs", ["status"])
    op.create_table(
        "nightly_steps",
        Column("id", Id, primary_key=True, autoincrement=True),
        Column("run_id", BigInteger, nullable=False),
        Column("position", Integer, nullable=False),
        Column("name", String(40), nullable=False),
        Column("status", String(10), nullable=False),
        Column("started_at", DateTime(timezone=True), nullable=False),
        Column("duration_ms", Float, nullable=False),
        Column("counts", Text, nullable=False),
        Column("error", Text, nullable=True),
        ForeignKeyConstraint(["run_id"], ["nightly_runs.id"], name="fk_nightly_steps_run"),
        UniqueConstraint("run_id", "position", name="uq_nightly_steps_position"),
    )
    op.create_table(
        "nightly_lock",
        Column("name", String(40), primary_key=True),
        Column("owner", String(300), nullable=False),
        Column("host", String(255), nullable=False),
        Column("pid", Integer, nullable=False),
        Column("started_at", DateTime(timezone=True), nullable=False),
        Column("heartbeat_at", DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("nightly_lock")
    op.drop_table("nightly_steps")
    op.drop_index("ix_nightly_runs_status", table_name="nightly_runs")
    op.drop_table("nightly_runs")
    op.drop_index("ix_harness_runs_started", table_name="harness_runs")
    op.drop_table("harness_runs")
