"""The ledger's "newest rows of one actor / one action" stay fast however long the chain.

``audit log --actor X`` (and ``--action``) reads the newest rows with that value, newest
first. With an index on ``actor`` alone the planner either sorts every row of the actor or
walks the chain backwards from its head filtering: for an actor whose rows are all old (an
agent retired a while ago) that walk read every newer row. Measured on PostgreSQL 15 with 2M
rows, 20k of them one old actor's: 1,581 ms; with ``(actor, seq)`` the same query reads 50
index entries backwards: 0.04 ms. The composite indexes replace the single-column ones (the
same leading column: every lookup the old ones served, these serve), so a write maintains no
more indexes than before.

Stands on 0001 alone, like the other branches.

Revision ID: 0022_ledger_recent_indexes
Revises: 0001
Create Date: 2026-12-03
"""

from __future__ import annotations

from alembic import op

revision = "0022_ledger_recent_indexes"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_ledger_actor_seq", "ledger", ["actor", "seq"])
    op.create_index("ix_ledger_action_seq", "ledger", ["action", "seq"])
    op.drop_index("ix_ledger_actor", table_name="ledger")
    op.drop_index("ix_ledger_action", table_name="ledger")


def downgrade() -> None:
    op.create_index("ix_ledger_actor", "ledger", ["actor"])
    op.create_index("ix_ledger_action", "ledger", ["action"])
    op.drop_index("ix_ledger_action_seq", table_name="ledger")
    op.drop_index("ix_ledger_actor_seq", table_name="ledger")
