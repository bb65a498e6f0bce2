"""Metadata on memories: a JSON object per memory, stored as canonical JSON text.

Adds ``memories.metadata`` (TEXT, NULL = no metadata) on both engines. Existing rows get NULL,
and a NULL metadata is left out of the row MAC's message (audit/rowmac.py), so every existing
MAC stays valid without re-blessing. On PostgreSQL it also adds ``memwarden_json_object(text)``,
which reads a text as jsonb and gives NULL for anything that is not a JSON object: the
metadata filter (core/metadata.py) goes through it, so a row whose metadata was edited into
invalid JSON behind memwarden's back is not matched instead of failing every filtered query
(PostgreSQL 15 has no ``IS JSON``; SQLite's filter uses ``json_valid``).

Stands on 0001 alone, like the other branches.

Revision ID: 0017_metadata
Revises: 0001
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017_metadata"
down_revision = "0001"
branch_labels = None
depends_on = None

_PG_FUNCTION = """
CREATE OR REPLACE FUNCTION memwarden_json_object(value text) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE parsed jsonb;
BEGIN
    IF value IS NULL THEN RETURN NULL; END IF;
    parsed := value::jsonb;
    IF jsonb_typeof(parsed) = 'object' THEN RETURN parsed; END IF;
    RETURN NULL;
EXCEPTION WHEN others THEN
    RETURN NULL;
END $$
"""


def upgrade() -> None:
    op.add_column("memories", sa.Column("metadata", sa.Text, nullable=True))
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_PG_FUNCTION)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS memwarden_json_object(text)")
    # Plain DROP COLUMN on both engines (SQLite 3.35+): a batch copy of ``memories`` would drop
    # its full-text triggers with the old table (as 0010_row_macs does).
    op.execute("ALTER TABLE memories DROP COLUMN metadata")
