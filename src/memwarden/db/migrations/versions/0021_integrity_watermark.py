"""The integrity scan's watermarks: where the next incremental scan's row checks start.

On PostgreSQL every row version carries the id of the transaction that wrote it (``xmin``).
A scan records its snapshot (``pg_current_snapshot()``); the next incremental scan checks the
row MACs and stored full-text vectors of the rows written by transactions at or after that
snapshot's ``xmin`` (the oldest still running when it began) alone, instead of every row.
Before this an incremental scan read every memory and recomputed every text vector, which
made it slower than the full scan whose ledger work it saved (16.9 s against 10.0 s at 200k
ledger rows). ``fulltext_config``: a digest of the text search configurations, dictionaries
and templates in the store's schema and pg_catalog, since a changed configuration makes every
stored vector stale with no row rewritten. Both NULL on SQLite and on runs made before this
revision: the next scan checks every row, as before.

Stands on 0006_integrity, which creates the table.

Revision ID: 0021_integrity_watermark
Revises: 0006_integrity
Create Date: 2026-12-03
"""

from __future__ import annotations

from alembic import op
from sqlalchemy import Column, String, Text

revision = "0021_integrity_watermark"
down_revision = "0006_integrity"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("integrity_runs", Column("row_snapshot", Text, nullable=True))
    op.add_column("integrity_runs", Column("fulltext_config", String(64), nullable=True))


def downgrade() -> None:
    # Plain DROP COLUMN on both engines (SQLite 3.35+), as 0010_row_macs does.
    op.execute("ALTER TABLE integrity_runs DROP COLUMN fulltext_config")
    op.execute("ALTER TABLE integrity_runs DROP COLUMN row_snapshot")
