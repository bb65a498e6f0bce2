"""Alerts: their history, the webhook delivery outbox and every delivery attempt.

Revision ID: 0002_alerts
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
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

revision = "0002_alerts"
down_revision = "0001"
branch_labels = None
depends_on = None

# A frozen copy of the tables as this revision creates them.
metadata = MetaData()
Id = BigInteger().with_variant(Integer(), "sqlite")

alerts = Table(
    "alerts",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("fingerprint", String(64), nullable=False),
    Column("severity", String(10), nullable=False),
    Column("title", Text, nullable=False),
    Column("message", Text, nullable=False),
    Column("context", Text, nullable=False),
    Column("status", String(10), nullable=False),
    Column("count", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("last_seen_at", DateTime(timezone=True), nullable=False),
    Column("resolved_at", DateTime(timezone=True), nullable=True),
    Index("ix_alerts_fingerprint", "fingerprint", "id"),
    Index("ix_alerts_severity", "severity", "id"),
    Index("ix_alerts_created", "created_at"),
)

alert_deliveries = Table(
    "alert_deliveries",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("alert_id", BigInteger, ForeignKey("alerts.id"), nullable=False),
    Column("kind", String(10), nullable=False),
    Column("target_key", String(32), nullable=False),
    Column("target", String(300), nullable=False),
    Column("target_kind", String(10), nullable=False),
    Column("folded", Integer, nullable=False),
    Column("state", String(10), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", DateTime(timezone=True), nullable=False),
    Column("last_status", Integer, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("delivered_at", DateTime(timezone=True), nullable=True),
    Index("ix_alert_deliveries_due", "state", "target_key", "next_attempt_at"),
    Index("ix_alert_deliveries_alert", "alert_id"),
)

alert_attempts = Table(
    "alert_attempts",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("delivery_id", BigInteger, ForeignKey("alert_deliveries.id"), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("status_code", Integer, nullable=True),
    Column("latency_ms", Float, nullable=False),
    Column("outcome", String(20), nullable=False),
    Column("error", Text, nullable=True),
    Index("ix_alert_attempts_delivery", "delivery_id", "attempt"),
)

TABLES = [alerts, alert_deliveries, alert_attempts]


def upgrade() -> None:
    bind = op.get_bind()
    for table in TABLES:
        table.create(bind)


def downgrade() -> None:
    bind = op.get_bind()
    for table in reversed(TABLES):
        table.drop(bind)
