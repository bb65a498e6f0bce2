"""Table definitions (SQLAlchemy Core). Full-text structures live in migrations, per engine."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.types import TypeDecorator

metadata = MetaData()

# INTEGER PRIMARY KEY is the rowid on SQLite (autoincrementing); BIGINT identity on PostgreSQL.
Id = BigInteger().with_variant(Integer(), "sqlite")

LIVE_STATUSES = ("candidate", "active")


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on both engines (SQLite stores naive UTC text)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)  # type: ignore[no-any-return]
        return value.astimezone(UTC)  # type: ignore[no-any-return]


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

# API keys (migration 0004_api_keys): only a hash of each key is kept; a name has at most one
# live (unrevoked) key, so ``api:<name>`` always means one key at a time.
api_keys = Table(
    "api_keys",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("name", String(100), nullable=False),
    Column("role", String(10), nullable=False),
    Column("prefix", String(16), nullable=False),
    Column("key_hash", String(64), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("revoked_at", UTCDateTime, nullable=True),
    # Scopes (migration 0014_provenance): JSON; null means the role's defaults.
    Column("scopes", Text, nullable=True),
    Index("uq_api_keys_prefix", "prefix", unique=True),
    Index(
        "uq_api_keys_live_name",
        "name",
        unique=True,
        sqlite_where=text("revoked_at IS NULL"),
        postgresql_where=text("revoked_at IS NULL"),
    ),
)

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

# Dashboard sessions ended by signing out (migration 0014_provenance): the cookie is signed
# and stateless, so its nonce is kept here until the cookie would have expired anyway.
dashboard_signouts = Table(
    "dashboard_signouts",
    metadata,
    Column("nonce", String(64), primary_key=True),
    Column("expires_at", UTCDateTime, nullable=False),
    Index("ix_dashboard_signouts_expires", "expires_at"),
)

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

# Extraction (migration 0005_extraction): each interaction a memory was extracted from (the
# first row is its birth, later rows its reinforcements; one row per memory and interaction),
# and how far each extractor has read each project's interactions.
memory_origins = Table(
    "memory_origins",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("memory_id", BigInteger, ForeignKey("memories.id"), nullable=False),
    Column("interaction_id", BigInteger, ForeignKey("interactions.id"), nullable=False),
    Column("extractor", String(50), nullable=False),
    Column("extractor_version", String(100), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("memory_id", "interaction_id", name="uq_memory_origins_pair"),
    Index("ix_memory_origins_interaction", "interaction_id"),
)

extraction_watermarks = Table(
    "extraction_watermarks",
    metadata,
    Column("project", String(100), ForeignKey("projects.name"), primary_key=True),
    Column("extractor", String(50), primary_key=True),
    Column("last_interaction_id", BigInteger, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
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

# Vectors of memories and chunks (migration 0013_recall): derived data, written after the row's
# own transaction commits, one per (kind, item, model), never in the ledger. ``id`` only grows,
# so a process's cached matrix loads what is new since its last look; ``vector_generation``
# moves on every write or delete, so a look costs one row.
embeddings = Table(
    "embeddings",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("kind", String(10), nullable=False),  # memory or chunk
    Column("item_id", BigInteger, nullable=False),
    Column("project", String(100), nullable=False),
    Column("model", String(200), nullable=False),
    Column("dimension", Integer, nullable=False),
    Column("content_hash", String(64), nullable=False),  # of the text that was embedded
    Column("vector", LargeBinary, nullable=False),  # float32, little-endian
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("kind", "item_id", "model", name="uq_embeddings_item_model"),
    Index("ix_embeddings_model_kind_id", "model", "kind", "id"),
    sqlite_autoincrement=True,
)

vector_generation = Table(
    "vector_generation",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("generation", BigInteger, nullable=False),
)

# Signed checkpoints (migration 0016_checkpoints): the RFC 6962 tree over the ledger's tagged
# rows (complete subtrees of 256 leaves or more, and the frontier of the tree's right edge),
# every checkpoint signed, and every attempt to publish one off the machine. No foreign keys:
# the tree is derived data, rebuilt from the ledger whenever it is in doubt.
merkle_nodes = Table(
    "merkle_nodes",
    metadata,
    Column("level", Integer, primary_key=True, autoincrement=False),
    Column("idx", BigInteger, primary_key=True, autoincrement=False),
    Column("hash", String(64), nullable=False),
)

merkle_state = Table(
    "merkle_state",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("size", BigInteger, nullable=False),
    Column("frontier", Text, nullable=False),
    Column("root", String(64), nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

checkpoints = Table(
    "checkpoints",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("tree_size", BigInteger, nullable=False),
    Column("root", String(64), nullable=False),
    Column("note", Text, nullable=False),
    Column("trigger", String(16), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Index("ix_checkpoints_size", "tree_size"),
)

checkpoint_publications = Table(
    "checkpoint_publications",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("checkpoint_id", BigInteger, nullable=False),
    Column("publisher", String(20), nullable=False),
    Column("target", String(300), nullable=False),
    Column("state", String(10), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("error", Text, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Index("ix_checkpoint_publications_publisher", "publisher", "id"),
)
