"""Tables: The audit records beside the ledger: who was served which memory, and the operation log."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Float,
    Index,
    String,
    Table,
    Text,
)

from memwarden.db.tables.base import Id, UTCDateTime, metadata

# Who was served what (migration 0014_provenance): one row per memory served by recall,
# context or get (the version served is the memory's last ledger row at that moment); swept after
# MEMWARDEN_READS_RETENTION_DAYS.
memory_reads = Table(
    "memory_reads",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("memory_id", BigInteger, nullable=False),
    Column("actor", String(200), nullable=False),
    Column("key_name", String(100), nullable=True),
    Column("operation", String(20), nullable=False),
    Column("served_at", UTCDateTime, nullable=False),
    Index("ix_memory_reads_memory", "memory_id", "id"),
    Index("ix_memory_reads_served", "served_at"),
)


# The operation log (audit/oplog): what was asked, by which transport, and how long it took.
# No foreign keys: a row may name a project that never existed, and outlives any it names.
operation_log = Table(
    "operation_log",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("action", String(64), nullable=False),
    Column("transport", String(16), nullable=False),
    Column("project", String(100), nullable=True),
    Column("actor", String(200), nullable=True),
    Column("started_at", UTCDateTime, nullable=False),
    Column("ended_at", UTCDateTime, nullable=False),
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
