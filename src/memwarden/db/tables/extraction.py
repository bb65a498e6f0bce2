"""Tables: Extraction: a memory's origins among the interactions, and each extractor's watermark."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    ForeignKey,
    Index,
    String,
    Table,
    UniqueConstraint,
)

from memwarden.db.tables.base import Id, UTCDateTime, metadata

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
