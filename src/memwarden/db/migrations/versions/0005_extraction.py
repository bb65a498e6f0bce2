"""Extraction: where each candidate came from, and how far each extractor has read.

Revision ID: 0005_extraction
Revises: 0001
Create Date: 2026-11-24
"""

from __future__ import annotations

from alembic import op
from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    ForeignKeyConstraint,
    Integer,
    PrimaryKeyConstraint,
    String,
    UniqueConstraint,
)

revision = "0005_extraction"
down_revision = "0001"
branch_labels = None
depends_on = None

Id = BigInteger().with_variant(Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "memory_origins",
        Column("id", Id, primary_key=True, autoincrement=True),
        Column("memory_id", BigInteger, nullable=False),
        Column("interaction_id", BigInteger, nullable=False),
        Column("extractor", String(50), nullable=False),
        Column("extractor_version", String(100), nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False),
        ForeignKeyConstraint(["memory_id"], ["memories.id"], name="fk_memory_origins_memory"),
        ForeignKeyConstraint(
            ["interaction_id"], ["interactions.id"], name="fk_memory_origins_interaction"
        ),
        UniqueConstraint("memory_id", "interaction_id", name="uq_memory_origins_pair"),
    )
    op.create_index("ix_memory_origins_interaction", "memory_origins", ["interaction_id"])
    op.create_table(
        "extraction_watermarks",
        Column("project", String(100), nullable=False),
        Column("extractor", String(50), nullable=False),
        Column("last_interaction_id", BigInteger, nullable=False),
        Column("updated_at", DateTime(timezone=True), nullable=False),
        PrimaryKeyConstraint("project", "extractor", name="pk_extraction_watermarks"),
        ForeignKeyConstraint(
            ["project"], ["projects.name"], name="fk_extraction_watermarks_project"
        ),
    )


def downgrade() -> None:
    op.drop_table("extraction_watermarks")
    op.drop_index("ix_memory_origins_interaction", table_name="memory_origins")
    op.drop_table("memory_origins")
