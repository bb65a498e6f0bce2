"""Storage that survives its own operations: FTS5 secure-delete, and the erasure receipts.

SQLite: both full-text indexes get FTS5's ``secure-delete`` option, so a deleted row's terms
leave the index at once (O(the row's terms)) instead of lingering until a merge of the whole
index; an erasure no longer runs ``optimize`` (whose repetition corrupted the index on SQLite
3.40, see docs/storage.md). The option needs SQLite 3.42 or newer (db/driver.py sees to that).

Both engines: ``erasures``, one receipt per erase (a memory, or a bulk erase): what went, and
whether every copy is gone from disk (``scrubbed``) or an old copy still waits in SQLite's
write-ahead log or PostgreSQL's dead row versions (``pending``) for the background scrub.

Revision ID: 0011_storage
Revises: 0001
Create Date: 2026-12-03
"""

from __future__ import annotations

from alembic import op
from sqlalchemy import BigInteger, Column, DateTime, Index, Integer, MetaData, String, Table, Text

revision = "0011_storage"
down_revision = "0001"
branch_labels = None
depends_on = None

Id = BigInteger().with_variant(Integer(), "sqlite")
FTS_TABLES = ("memories_fts", "chunks_fts")

# A frozen copy of the table as this revision creates it.
metadata = MetaData()

erasures = Table(
    "erasures",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("requested_at", DateTime(timezone=True), nullable=False),
    Column("actor", String(200), nullable=False),
    Column("reason", Text, nullable=False),
    Column("scope", Text, nullable=False),
    Column("erased", Text, nullable=False),
    Column("status", String(10), nullable=False),
    Column("pending", Text, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("scrubbed_at", DateTime(timezone=True), nullable=True),
    Column("horizon", String(32), nullable=True),
    Index("ix_erasures_status", "status", "id"),
)


def _secure_delete(on: bool) -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for table in FTS_TABLES:
        op.execute(f"INSERT INTO {table}({table}, rank) VALUES ('secure-delete', {int(on)})")  # noqa: S608


def upgrade() -> None:
    erasures.create(op.get_bind())
    _secure_delete(True)


def downgrade() -> None:
    _secure_delete(False)
    erasures.drop(op.get_bind())
