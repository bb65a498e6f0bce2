"""Table definitions (SQLAlchemy Core). Full-text structures live in migrations, per engine.

This module holds the core tables (those of migration 0001_core: what every audited
mutation writes) and re-exports every other table from its concept's module in
``db/tables/``, so ``from memwarden.db.schema import X`` works for every table and type, and
``metadata`` here is the whole schema."""

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
    text,
)

from memwarden.db.tables.access import api_keys, dashboard_signouts
from memwarden.db.tables.alerts import (
    alert_attempts,
    alert_deliveries,
    alert_emits,
    alerts,
)
from memwarden.db.tables.audit import memory_reads, operation_log
from memwarden.db.tables.base import Id, UTCDateTime, metadata
from memwarden.db.tables.checkpoints import (
    checkpoint_publications,
    checkpoints,
    merkle_nodes,
    merkle_state,
)
from memwarden.db.tables.erasure import erasures
from memwarden.db.tables.extraction import extraction_watermarks, memory_origins
from memwarden.db.tables.integrity import integrity_findings, integrity_runs
from memwarden.db.tables.runs import (
    harness_runs,
    nightly_lock,
    nightly_runs,
    nightly_steps,
)
from memwarden.db.tables.vectors import embeddings, vector_generation

__all__ = [
    "metadata",
    "Id",
    "UTCDateTime",
    "LIVE_STATUSES",
    "meta",
    "projects",
    "project_state",
    "documents",
    "source_chunks",
    "interactions",
    "memories",
    "ledger",
    "ledger_payloads",
    "api_keys",
    "dashboard_signouts",
    "alert_attempts",
    "alert_deliveries",
    "alert_emits",
    "alerts",
    "memory_reads",
    "operation_log",
    "checkpoint_publications",
    "checkpoints",
    "merkle_nodes",
    "merkle_state",
    "erasures",
    "extraction_watermarks",
    "memory_origins",
    "integrity_findings",
    "integrity_runs",
    "harness_runs",
    "nightly_lock",
    "nightly_runs",
    "nightly_steps",
    "embeddings",
    "vector_generation",
]

LIVE_STATUSES = ("candidate", "active")


meta = Table(
    "memwarden_meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

projects = Table(
    "projects",
    metadata,
    Column("name", String(100), primary_key=True),
    Column("description", Text, nullable=False, server_default=""),
    Column("created_at", UTCDateTime, nullable=False),
)

project_state = Table(
    "project_state",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("project", String(100), ForeignKey("projects.name"), nullable=False),
    Column("category", String(100), nullable=False),
    Column("key", String(200), nullable=False),
    Column("value", Text, nullable=False),
    Column("source", Text, nullable=False, server_default=""),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    # The row MAC over the served fields (audit/rowmac.py, migration 0010_row_macs); NULL
    # on a row the migration could not verify against its ledger: such a row is not served.
    Column("mac", String(64), nullable=True),
    UniqueConstraint("project", "category", "key", name="uq_project_state_key"),
)

documents = Table(
    "documents",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("project", String(100), ForeignKey("projects.name"), nullable=False),
    Column("uri", Text, nullable=False),
    Column("title", Text, nullable=False, server_default=""),
    Column("content_hash", String(64), nullable=False),
    Column("size_bytes", BigInteger, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    UniqueConstraint("project", "uri", name="uq_documents_uri"),
    sqlite_autoincrement=True,  # an id is never reused, even after a delete
)

source_chunks = Table(
    "source_chunks",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("document_id", BigInteger, ForeignKey("documents.id"), nullable=False),
    Column("project", String(100), ForeignKey("projects.name"), nullable=False),
    Column("ordinal", Integer, nullable=False),
    Column("heading", Text, nullable=False, server_default=""),
    Column("content", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Index("ix_source_chunks_document", "document_id", "ordinal"),
    Index("ix_source_chunks_project", "project"),
    sqlite_autoincrement=True,  # an id is never reused, even after a delete
)

interactions = Table(
    "interactions",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("project", String(100), ForeignKey("projects.name"), nullable=False),
    Column("prompt", Text, nullable=False),
    Column("response", Text, nullable=False),
    Column("client", String(200), nullable=False, server_default=""),
    Column("created_at", UTCDateTime, nullable=False),
    Index("ix_interactions_project_id", "project", "id"),
    sqlite_autoincrement=True,  # an id is never reused, even after a delete
)

memories = Table(
    "memories",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("project", String(100), ForeignKey("projects.name"), nullable=False),
    Column("type", String(50), nullable=False),
    Column("content", Text, nullable=False),
    Column("content_hash", String(64), nullable=False),
    Column("confidence", Float, nullable=False),
    Column("status", String(20), nullable=False),
    Column("source_chunk_id", BigInteger, ForeignKey("source_chunks.id"), nullable=True),
    Column("reinforcement_count", Integer, nullable=False, server_default="0"),
    Column("superseded_by", BigInteger, ForeignKey("memories.id"), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("last_reinforced_at", UTCDateTime, nullable=True),
    # Provenance and trust (migration 0014_provenance): plain columns, outside the ledger's
    # snapshot (the ledger records the actor of every change, from which they derive).
    Column("source_kind", String(20), nullable=True),  # person, agent, extraction, import
    Column("source_actor", String(200), nullable=True),
    Column("source_key", String(100), nullable=True),
    Column("tier", String(12), nullable=True),  # verified, agent, extracted, flagged
    Column("flags", Text, nullable=True),  # JSON list of screening reasons
    Column("independent_reinforcements", Integer, nullable=False, server_default="0"),
    Column("proposes", BigInteger, nullable=True),  # the active memory this would replace
    Column("mac", String(64), nullable=True),  # the row MAC, as for project_state
    # The caller's metadata object as canonical JSON text, NULL when none (0017_metadata):
    # text on both engines, so the row MAC and the ledger replay compare it byte for byte.
    Column("metadata", Text, nullable=True),
    Index("ix_memories_project_status_type", "project", "status", "type"),
    Index("ix_memories_status_created", "status", "created_at"),
    Index("ix_memories_source_chunk", "source_chunk_id"),
    Index("ix_memories_superseded_by", "superseded_by"),
    Index("ix_memories_content_hash", "project", "type", "content_hash"),
    # The integrity scan's (migration 0006_integrity): duplicate active memories and superseded
    # memories without a successor, each found from an index alone.
    Index("ix_memories_status_content", "status", "project", "type", "content_hash"),
    Index("ix_memories_status_successor", "status", "superseded_by"),
    # One live (candidate or active) memory per normalised statement: the guard that turns a
    # concurrent restatement into a reinforcement instead of a duplicate.
    Index(
        "uq_memories_live_content",
        "project",
        "type",
        "content_hash",
        unique=True,
        sqlite_where=text("status IN ('candidate', 'active')"),
        postgresql_where=text("status IN ('candidate', 'active')"),
    ),
    sqlite_autoincrement=True,  # an id is never reused, even after a delete
)

# The tagged, append-only chain. Payloads live apart so an erasure can blank them.
ledger = Table(
    "ledger",
    metadata,
    Column("seq", Id, primary_key=True, autoincrement=False),
    Column("entity_type", String(20), nullable=False),
    Column("entity_id", String(400), nullable=False),
    Column("project", String(100), nullable=True),
    Column("action", String(30), nullable=False),
    Column("actor", String(200), nullable=False),
    Column("ts", String(27), nullable=False),
    Column("payload_digest", String(64), nullable=False),
    Column("prev_tag", String(64), nullable=False),
    Column("tag", String(64), nullable=False),
    Index("ix_ledger_entity", "entity_type", "entity_id", "seq"),
    Index("ix_ledger_ts", "ts"),
    # The newest rows of one action or actor, read backwards (0022_ledger_recent_indexes).
    Index("ix_ledger_action_seq", "action", "seq"),
    Index("ix_ledger_actor_seq", "actor", "seq"),
    Index("ix_ledger_project_seq", "project", "seq"),
)

ledger_payloads = Table(
    "ledger_payloads",
    metadata,
    Column("seq", Id, primary_key=True, autoincrement=False),
    Column("body", Text, nullable=True),
    Column("erased_at", String(27), nullable=True),
)
