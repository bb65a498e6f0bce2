"""Provenance and trust: where each memory came from, its tier, key scopes, who read what,
and dashboard sessions ended by signing out.

Existing memories get their provenance from the ledger row that created them (its actor):
``cli:…``, ``human-triage``, ``library`` and ``integrity-repair`` are a person (tier
``verified``); ``api:…``, ``mcp:…`` and ``api-http`` an agent (tier ``agent``); ``extractor:…``
extraction (tier ``extracted``); a memory whose creation row is missing gets ``agent``, the
cautious choice. Every reinforcement counted so far is kept as independent (the old rules
could not tell). Existing keys get no scopes (null): their role's defaults apply, so a write
key writes candidates only from this revision on.

Revision ID: 0014_provenance
Revises: 0004_api_keys
Create Date: 2026-12-03
"""

from __future__ import annotations

from alembic import op
from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    text,
)

revision = "0014_provenance"
down_revision = "0004_api_keys"
branch_labels = None
depends_on = None

metadata = MetaData()

memory_reads = Table(
    "memory_reads",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("memory_id", BigInteger, nullable=False),
    Column("actor", String(200), nullable=False),
    Column("key_name", String(100), nullable=True),
    Column("operation", String(20), nullable=False),
    Column("served_at", DateTime(timezone=True), nullable=False),
    Index("ix_memory_reads_memory", "memory_id", "id"),
    Index("ix_memory_reads_served", "served_at"),
)


dashboard_signouts = Table(
    "dashboard_signouts",
    metadata,
    Column("nonce", String(64), primary_key=True),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Index("ix_dashboard_signouts_expires", "expires_at"),
)


def _memory_columns() -> tuple[Column[object], ...]:
    return (
        Column("source_kind", String(20), nullable=True),
        Column("source_actor", String(200), nullable=True),
        Column("source_key", String(100), nullable=True),
        Column("tier", String(12), nullable=True),
        Column("flags", Text, nullable=True),
        Column("independent_reinforcements", Integer, nullable=False, server_default="0"),
        Column("proposes", BigInteger, nullable=True),
    )


_MEMORY_COLUMNS = [column.name for column in _memory_columns()]

_BACKFILL = (
    """UPDATE memories SET source_actor = (
        SELECT l.actor FROM ledger l
        WHERE l.entity_type = 'memory' AND l.entity_id = CAST(memories.id AS VARCHAR(40))
          AND l.action = 'created'
        ORDER BY l.seq LIMIT 1)""",
    """UPDATE memories SET source_kind = CASE
        WHEN source_actor LIKE 'cli:%' OR source_actor IN ('human-triage', 'library',
             'integrity-repair') THEN 'person'
        WHEN source_actor LIKE 'extractor:%' THEN 'extraction'
        ELSE 'agent' END""",
    """UPDATE memories SET source_key = SUBSTR(source_actor, 5)
        WHERE source_actor LIKE 'api:%'""",
    """UPDATE memories SET tier = CASE source_kind
        WHEN 'person' THEN 'verified' WHEN 'extraction' THEN 'extracted' ELSE 'agent' END""",
    "UPDATE memories SET independent_reinforcements = reinforcement_count",
)


def upgrade() -> None:
    for column in _memory_columns():
        op.add_column("memories", column)
    op.add_column("api_keys", Column("scopes", Text, nullable=True))
    bind = op.get_bind()
    for statement in _BACKFILL:
        bind.execute(text(statement))
    memory_reads.create(bind)
    dashboard_signouts.create(bind)


def downgrade() -> None:
    bind = op.get_bind()
    dashboard_signouts.drop(bind)
    memory_reads.drop(bind)
    op.drop_column("api_keys", "scopes")
    for name in reversed(_MEMORY_COLUMNS):
        op.drop_column("memories", name)
