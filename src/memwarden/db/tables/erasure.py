"""Tables: Erasure receipts."""

from __future__ import annotations

from sqlalchemy import (
    Column,
    Index,
    Integer,
    String,
    Table,
    Text,
)

from memwarden.db.tables.base import Id, UTCDateTime, metadata

# Erasure receipts (migration 0011_storage): one per erase. ``scope`` what was asked (JSON),
# ``erased`` the ids that went (JSON), ``status`` scrubbed or pending, ``pending`` which old
# copies still wait for the background scrub (JSON list: "sqlite_wal", "pg_dead_rows");
# ``horizon`` (PostgreSQL) the erasing transaction's id: older snapshots may still see the text.
erasures = Table(
    "erasures",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("requested_at", UTCDateTime, nullable=False),
    Column("actor", String(200), nullable=False),
    Column("reason", Text, nullable=False),
    Column("scope", Text, nullable=False),
    Column("erased", Text, nullable=False),
    Column("status", String(10), nullable=False),
    Column("pending", Text, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("scrubbed_at", UTCDateTime, nullable=True),
    Column("horizon", String(32), nullable=True),
    Index("ix_erasures_status", "status", "id"),
)
