"""Alert emit ids: which alerts of the alerts file already reached the alerts table.

Every alert gets a unique id when it is raised, written in its line of the alerts file; the
writer that commits it (as a new row, or folded into a firing one by throttling) records the
id here in the same transaction. At start-up the lines whose id is missing are replayed: they
were raised by a process that died before its writer committed them.

No foreign key to ``alerts``: this branch stands on 0001 alone, like the others, and the id
is only ever looked up, never joined.

Revision ID: 0009_alert_emits
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

from alembic import op
from sqlalchemy import BigInteger, Column, DateTime, Index, MetaData, String, Table

revision = "0009_alert_emits"
down_revision = "0001"
branch_labels = None
depends_on = None

# A frozen copy of the table as this revision creates it.
metadata = MetaData()

alert_emits = Table(
    "alert_emits",
    metadata,
    Column("emit_id", String(32), primary_key=True),
    Column("alert_id", BigInteger, nullable=False),
    Column("emitted_at", DateTime(timezone=True), nullable=False),
    Index("ix_alert_emits_emitted", "emitted_at"),
)


def upgrade() -> None:
    alert_emits.create(op.get_bind())


def downgrade() -> None:
    alert_emits.drop(op.get_bind())
