"""Tables: Alerts: their history, the delivery outbox, every attempt, and the emit ids replay uses."""

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
)

from memwarden.db.tables.base import Id, UTCDateTime, metadata

# Alerts (migration 0002_alerts): the history (one row per problem and throttle window, with a
# count of repeats), the delivery outbox (one row per alert, kind and webhook) and every attempt.
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
    Column("created_at", UTCDateTime, nullable=False),
    Column("last_seen_at", UTCDateTime, nullable=False),
    Column("resolved_at", UTCDateTime, nullable=True),
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
    Column("next_attempt_at", UTCDateTime, nullable=False),
    Column("last_status", Integer, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("delivered_at", UTCDateTime, nullable=True),
    # Migration 0012_alert_delivery: the retry state that survives a restart or a takeover
    # (counted failures drive the backoff; 429/503 do not count), the start of the delivery's
    # time budget (reset by a redelivery) and the stable id a receiver drops repeats by.
    Column("failures", Integer, nullable=False, server_default="0"),
    Column("budget_from", UTCDateTime, nullable=True),
    Column("uid", String(32), nullable=True),
    Index("ix_alert_deliveries_due", "state", "target_key", "next_attempt_at"),
    Index("ix_alert_deliveries_alert", "alert_id"),
)

alert_attempts = Table(
    "alert_attempts",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("delivery_id", BigInteger, ForeignKey("alert_deliveries.id"), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("status_code", Integer, nullable=True),
    Column("latency_ms", Float, nullable=False),
    Column("outcome", String(20), nullable=False),
    Column("error", Text, nullable=True),
    Index("ix_alert_attempts_delivery", "delivery_id", "attempt"),
)

# Alert emit ids (migration 0009_alert_emits): the unique id of every alert committed to
# ``alerts`` (as its row or folded into one), so that a start-up replays exactly the lines of
# the alerts file that never got there. Pruned past the replay horizon; no foreign key.
alert_emits = Table(
    "alert_emits",
    metadata,
    Column("emit_id", String(32), primary_key=True),
    Column("alert_id", BigInteger, nullable=False),
    Column("emitted_at", UTCDateTime, nullable=False),
    Index("ix_alert_emits_emitted", "emitted_at"),
)
