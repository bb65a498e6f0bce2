"""API keys for the HTTP API: a name, a role and the hash of the key.

Revision ID: 0004_api_keys
Revises: 0001
Create Date: 2026-11-24
"""

from __future__ import annotations

from alembic import op
from sqlalchemy import BigInteger, Column, DateTime, Index, Integer, MetaData, String, Table, text

revision = "0004_api_keys"
down_revision = "0001"
branch_labels = None
depends_on = None

# A frozen copy of the table as this revision creates it.
metadata = MetaData()

api_keys = Table(
    "api_keys",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("name", String(100), nullable=False),
    Column("role", String(10), nullable=False),
    Column("prefix", String(16), nullable=False),
    Column("key_hash", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
    Index("uq_api_keys_prefix", "prefix", unique=True),
    Index(
        "uq_api_keys_live_name",
        "name",
        unique=True,
        sqlite_where=text("revoked_at IS NULL"),
        postgresql_where=text("revoked_at IS NULL"),
    ),
)


def upgrade() -> None:
    api_keys.create(op.get_bind())


def downgrade() -> None:
    api_keys.drop(op.get_bind())
