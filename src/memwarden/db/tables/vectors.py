"""Tables: Vectors of memories and chunks, and the generation that tells a process what is new."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    UniqueConstraint,
)

from memwarden.db.tables.base import Id, UTCDateTime, metadata

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
