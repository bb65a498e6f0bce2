"""Core tables, full-text indexes and the append-only ledger.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
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
    UniqueConstraint,
    text,
)

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# A frozen copy of the schema as this revision created it: later revisions change schema.py,
# never this file.
metadata = MetaData()
Id = BigInteger().with_variant(Integer(), "sqlite")

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
    Column("created_at", DateTime(timezone=True), nullable=False),
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
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
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
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
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
    Column("created_at", DateTime(timezone=True), nullable=False),
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
    Column("created_at", DateTime(timezone=True), nullable=False),
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
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("last_reinforced_at", DateTime(timezone=True), nullable=True),
    Index("ix_memories_project_status_type", "project", "status", "type"),
    Index("ix_memories_status_created", "status", "created_at"),
    Index("ix_memories_source_chunk", "source_chunk_id"),
    Index("ix_memories_superseded_by", "superseded_by"),
    Index("ix_memories_content_hash", "project", "type", "content_hash"),
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
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
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
    Index("ix_ledger_action", "action"),
    Index("ix_ledger_actor", "actor"),
    Index("ix_ledger_project_seq", "project", "seq"),
)

ledger_payloads = Table(
    "ledger_payloads",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("body", Text, nullable=True),
    Column("erased_at", String(27), nullable=True),
)


TABLES = [
    meta,
    projects,
    project_state,
    documents,
    source_chunks,
    interactions,
    memories,
    ledger,
    ledger_payloads,
]

SQLITE_FTS = [
    # External-content FTS5 indexes, kept in step by triggers inside the writing transaction.
    """CREATE VIRTUAL TABLE memories_fts USING fts5(
        content, content='memories', content_rowid='id',
        tokenize='unicode61 remove_diacritics 2')""",
    "CREATE VIRTUAL TABLE memories_fts_vocab USING fts5vocab(memories_fts, 'row')",
    """CREATE TRIGGER memories_fts_ai AFTER INSERT ON memories BEGIN
        INSERT INTO memories_fts(rowid, content) VALUES (new.id, new.content); END""",
    """CREATE TRIGGER memories_fts_ad AFTER DELETE ON memories BEGIN
        INSERT INTO memories_fts(memories_fts, rowid, content)
        VALUES ('delete', old.id, old.content); END""",
    """CREATE TRIGGER memories_fts_au AFTER UPDATE OF content ON memories BEGIN
        INSERT INTO memories_fts(memories_fts, rowid, content)
        VALUES ('delete', old.id, old.content);
        INSERT INTO memories_fts(rowid, content) VALUES (new.id, new.content); END""",
    """CREATE VIRTUAL TABLE chunks_fts USING fts5(
        heading, content, content='source_chunks', content_rowid='id',
        tokenize='unicode61 remove_diacritics 2')""",
    "CREATE VIRTUAL TABLE chunks_fts_vocab USING fts5vocab(chunks_fts, 'row')",
    """CREATE TRIGGER chunks_fts_ai AFTER INSERT ON source_chunks BEGIN
        INSERT INTO chunks_fts(rowid, heading, content)
        VALUES (new.id, new.heading, new.content); END""",
    """CREATE TRIGGER chunks_fts_ad AFTER DELETE ON source_chunks BEGIN
        INSERT INTO chunks_fts(chunks_fts, rowid, heading, content)
        VALUES ('delete', old.id, old.heading, old.content); END""",
    """CREATE TRIGGER chunks_fts_au AFTER UPDATE ON source_chunks BEGIN
        INSERT INTO chunks_fts(chunks_fts, rowid, heading, content)
        VALUES ('delete', old.id, old.heading, old.content);
        INSERT INTO chunks_fts(rowid, heading, content)
        VALUES (new.id, new.heading, new.content); END""",
    # Append-only at the database level.
    """CREATE TRIGGER ledger_no_update BEFORE UPDATE ON ledger BEGIN
        SELECT RAISE(ABORT, 'ledger is append-only'); END""",
    """CREATE TRIGGER ledger_no_delete BEFORE DELETE ON ledger BEGIN
        SELECT RAISE(ABORT, 'ledger is append-only'); END""",
]

SQLITE_FTS_DOWN = [
    "DROP TRIGGER IF EXISTS ledger_no_delete",
    "DROP TRIGGER IF EXISTS ledger_no_update",
    "DROP TRIGGER IF EXISTS chunks_fts_au",
    "DROP TRIGGER IF EXISTS chunks_fts_ad",
    "DROP TRIGGER IF EXISTS chunks_fts_ai",
    "DROP TABLE IF EXISTS chunks_fts_vocab",
    "DROP TABLE IF EXISTS chunks_fts",
    "DROP TRIGGER IF EXISTS memories_fts_au",
    "DROP TRIGGER IF EXISTS memories_fts_ad",
    "DROP TRIGGER IF EXISTS memories_fts_ai",
    "DROP TABLE IF EXISTS memories_fts_vocab",
    "DROP TABLE IF EXISTS memories_fts",
]

POSTGRES_FTS = [
    """ALTER TABLE memories ADD COLUMN content_tsv tsvector
        GENERATED ALWAYS AS (to_tsvector('simple', content)) STORED""",
    "CREATE INDEX ix_memories_content_tsv ON memories USING GIN (content_tsv)",
    """ALTER TABLE source_chunks ADD COLUMN content_tsv tsvector
        GENERATED ALWAYS AS (to_tsvector('simple', heading || ' ' || content)) STORED""",
    "CREATE INDEX ix_source_chunks_content_tsv ON source_chunks USING GIN (content_tsv)",
    """CREATE FUNCTION memwarden_ledger_append_only() RETURNS trigger AS $$
        BEGIN RAISE EXCEPTION 'ledger is append-only'; END; $$ LANGUAGE plpgsql""",
    """CREATE TRIGGER ledger_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON ledger
        FOR EACH STATEMENT EXECUTE FUNCTION memwarden_ledger_append_only()""",
]

POSTGRES_FTS_DOWN = [
    "DROP TRIGGER IF EXISTS ledger_append_only ON ledger",
    "DROP FUNCTION IF EXISTS memwarden_ledger_append_only()",
    "DROP INDEX IF EXISTS ix_source_chunks_content_tsv",
    "ALTER TABLE source_chunks DROP COLUMN IF EXISTS content_tsv",
    "DROP INDEX IF EXISTS ix_memories_content_tsv",
    "ALTER TABLE memories DROP COLUMN IF EXISTS content_tsv",
]


def _dialect_statements(up: bool) -> list[str]:
    if op.get_bind().dialect.name == "sqlite":
        return SQLITE_FTS if up else SQLITE_FTS_DOWN
    return POSTGRES_FTS if up else POSTGRES_FTS_DOWN


def upgrade() -> None:
    bind = op.get_bind()
    for table in TABLES:
        table.create(bind)
    for statement in _dialect_statements(up=True):
        op.execute(statement)


def downgrade() -> None:
    bind = op.get_bind()
    for statement in _dialect_statements(up=False):
        op.execute(statement)
    for table in reversed(TABLES):
        table.drop(bind)
