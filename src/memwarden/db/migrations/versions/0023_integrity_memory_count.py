"""The integrity scan records how many memories it saw (``memory_count``).

memwarden never deletes a memory row (an erasure blanks it in place), so the memories at or
below the previous scan's highest id must still number what that scan counted. The next
incremental scan compares the two and replays every memory when some are gone: before this a
memory deleted in the database escaped every incremental scan, the nightly one included.
NULL on runs made before this revision: the next scan replays every memory, once.

Revision ID: 0023_integrity_memory_count
Revises: 0021_integrity_watermark
Create Date: 2026-12-05
"""

from __future__ import annotations

from alembic import op
from sqlalchemy import BigInteger, Column

revision = "0023_integrity_memory_count"
down_revision = "0021_integrity_watermark"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("integrity_runs", Column("memory_count", BigInteger, nullable=True))


def downgrade() -> None:
    # Plain DROP COLUMN on both engines (SQLite 3.35+), as 0021_integrity_watermark does.
    op.execute("ALTER TABLE integrity_runs DROP COLUMN memory_count")
