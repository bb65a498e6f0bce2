"""Alert delivery on a time budget: retry state in the outbox, and a stable delivery id.

``failures`` counts the failed attempts that drive the backoff (a 429 or 503 does not count),
``budget_from`` starts the delivery's time budget again when an operator redelivers a dead
letter (NULL: the budget runs from ``created_at``), and ``uid`` is the id a receiver drops
repeats by (NULL for rows queued before this revision: they are sent with their row id).
New states ``dead`` (the budget ran out) need no schema change.

Stands on 0002_alerts, which created the table.

Revision ID: 0012_alert_delivery
Revises: 0002_alerts
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012_alert_delivery"
down_revision = "0002_alerts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "alert_deliveries",
        sa.Column("failures", sa.Integer(), nullable=False, server_default="0"),
    )
    op.add_column(
        "alert_deliveries", sa.Column("budget_from", sa.DateTime(timezone=True), nullable=True)
    )
    op.add_column("alert_deliveries", sa.Column("uid", sa.String(32), nullable=True))


def downgrade() -> None:
    # Dead letters become the failed deliveries they were before this revision.
    op.execute("UPDATE alert_deliveries SET state = 'failed' WHERE state = 'dead'")
    # Plain ALTER TABLE … DROP COLUMN on both engines (SQLite has it since 3.35; memwarden's
    # floor is 3.45): no index or constraint names these columns. Not a batch copy: on SQLite
    # that drops and recreates the table, and with foreign keys on, the drop's implicit
    # DELETE fails on the alert_attempts rows that reference it.
    for column in ("uid", "budget_from", "failures"):
        op.drop_column("alert_deliveries", column)
