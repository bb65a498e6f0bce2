"""SQLite: the ledger's sequence number becomes the row id of its two tables.

Declared BIGINT, ``seq`` was an ordinary key with an index of its own beside the hidden row
id, so walking the chain in order (``audit verify``, the integrity scan) went through that
index and looked up every row, and its payload, a second time. As ``INTEGER PRIMARY KEY`` it
is the row id itself: the walk is a straight scan. PostgreSQL is unchanged.

Revision ID: 0008_ledger_rowid
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

from alembic import op
from sqlalchemy import BigInteger, Integer
from sqlalchemy.types import TypeEngine

revision = "0008_ledger_rowid"
down_revision = "0001"
branch_labels = None
depends_on = None

# The append-only guards belong to the table; a rebuilt table needs them made again.
APPEND_ONLY = [
    """CREATE TRIGGER ledger_no_update BEFORE UPDATE ON ledger BEGIN
        SELECT RAISE(ABORT, 'ledger is append-only'); END""",
    """CREATE TRIGGER ledger_no_delete BEFORE DELETE ON ledger BEGIN
        SELECT RAISE(ABORT, 'ledger is append-only'); END""",
]
APPEND_ONLY_DOWN = [
    "DROP TRIGGER IF EXISTS ledger_no_delete",
    "DROP TRIGGER IF EXISTS ledger_no_update",
]


def _retype_seq(new: TypeEngine[int], old: TypeEngine[int]) -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for statement in APPEND_ONLY_DOWN:
        op.execute(statement)
    for table in ("ledger", "ledger_payloads"):
        with op.batch_alter_table(table, recreate="always") as batch:
            batch.alter_column("seq", type_=new, existing_type=old, existing_nullable=False)
    for statement in APPEND_ONLY:
        op.execute(statement)


def upgrade() -> None:
    _retype_seq(Integer(), BigInteger())


def downgrade() -> None:
    _retype_seq(BigInteger(), Integer())
