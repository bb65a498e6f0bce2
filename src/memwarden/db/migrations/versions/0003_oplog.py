"""Operation log: one row per logged operation (action, transport, timing, shapes).

Revision ID: 0003_oplog
Revises: 0001
Create Date: 2026-11-24
"""

from __future__ import annotations

from alembic import op
from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

revision = "0003_oplog"
down_revision = "0001"
branch_labels = None
depends_on = None

# A frozen copy of the table as this revision creates it.
metadata = MetaData()
Id = BigInteger().with_variant(Integer(), "sqlite")

operation_log = Table(
    "operation_log",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("action", String(64), nullable=False),
    Column("transport", String(16), nullable=False),
    Column("project", String(100), nullable=True),
    Column("actor", String(200), nullable=True),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("ended_at", DateTime(timezone=True), nullable=False),
    Column("duration_ms", Float, nullable=False),
    Column("error", String(200), nullable=True),
    Column("request", Text, nullable=True),
    Column("response", Text, nullable=True),
    Column("metadata", Text, nullable=True),
    Index("ix_operation_log_action_started", "action", "started_at"),
    Index("ix_operation_log_started", "started_at"),
    Index("ix_operation_log_transport", "transport"),
    Index("ix_operation_log_project", "project"),
)


def upgrade() -> None:
    operation_log.create(op.get_bind())


def downgrade() -> None:
    operation_log.drop(op.get_bind())
