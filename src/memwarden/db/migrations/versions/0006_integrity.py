"""The integrity scan: its runs and findings, and two indexes that make its checks index-only.

Revision ID: 0006_integrity
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

from alembic import op
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKeyConstraint,
    Integer,
    String,
    Text,
)

revision = "0006_integrity"
down_revision = "0001"
branch_labels = None
depends_on = None

Id = BigInteger().with_variant(Integer(), "sqlite")


def upgrade() -> None:
    # Duplicate active memories: a walk of this index grouped by (project, type, content hash).
    op.create_index(
        "ix_memories_status_content", "memories", ["status", "project", "type", "content_hash"]
    )
    # Superseded memories that name no successor: one index lookup.
    op.create_index("ix_memories_status_successor", "memories", ["status", "superseded_by"])
    op.create_table(
        "integrity_runs",
        Column("id", Id, primary_key=True, autoincrement=True),
        Column("started_at", DateTime(timezone=True), nullable=False),
        Column("finished_at", DateTime(timezone=True), nullable=True),
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
    )
    op.create_index("ix_integrity_runs_started", "integrity_runs", ["started_at"])
    op.create_table(
        "integrity_findings",
        Column("id", Id, primary_key=True, autoincrement=True),
        Column("run_id", BigInteger, nullable=False),
        Column("check_name", String(64), nullable=False),
        Column("severity", String(10), nullable=False),
        Column("count", BigInteger, nullable=False),
        Column("examples", Text, nullable=False),
        Column("message", Text, nullable=False),
        ForeignKeyConstraint(["run_id"], ["integrity_runs.id"], name="fk_integrity_findings_run"),
    )
    op.create_index("ix_integrity_findings_run", "integrity_findings", ["run_id"])


def downgrade() -> None:
    op.drop_index("ix_integrity_findings_run", table_name="integrity_findings")
    op.drop_table("integrity_findings")
    op.drop_index("ix_integrity_runs_started", table_name="integrity_runs")
    op.drop_table("integrity_runs")
    op.drop_index("ix_memories_status_successor", table_name="memories")
    op.drop_index("ix_memories_status_content", table_name="memories")
