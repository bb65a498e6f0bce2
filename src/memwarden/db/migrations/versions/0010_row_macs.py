"""Row MACs: a keyed MAC over each memory's and project-state entry's served fields.

Adds ``mac`` to ``memories`` and ``project_state`` and fills it for the rows already there, but
only for a row that its ledger replays to exactly (a memory: ``audit_gaps`` replay from its
creation; a state entry: its last ledger entry's ``after``). A row that does not match its
ledger gets no MAC: it is not blessed, and reads withhold it as tampered until
``integrity check --fix`` restores it. The ledger key comes from the store's settings; a key
that does not verify the chain's newest rows stops the migration (MACs made with the wrong key
would fail on every read).

Stands on 0001 alone, like the other branches.

Revision ID: 0010_row_macs
Revises: 0001
Create Date: 2026-12-03
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
import structlog
from alembic import context, op

revision = "0010_row_macs"
down_revision = "0001"
branch_labels = None
depends_on = None

log = structlog.get_logger(__name__)

# Frozen copies of the columns as this revision reads and writes them.
_meta = sa.MetaData()
memories = sa.Table(
    "memories",
    _meta,
    sa.Column("id", sa.BigInteger),
    sa.Column("project", sa.String),
    sa.Column("type", sa.String),
    sa.Column("content", sa.Text),
    sa.Column("content_hash", sa.String),
    sa.Column("confidence", sa.Float),
    sa.Column("status", sa.String),
    sa.Column("source_chunk_id", sa.BigInteger),
    sa.Column("reinforcement_count", sa.Integer),
    sa.Column("superseded_by", sa.BigInteger),
    sa.Column("created_at", sa.Text),
    sa.Column("updated_at", sa.Text),
    sa.Column("last_reinforced_at", sa.Text),
    sa.Column("mac", sa.String(64)),
)
project_state = sa.Table(
    "project_state",
    _meta,
    sa.Column("id", sa.BigInteger),
    sa.Column("project", sa.String),
    sa.Column("category", sa.String),
    sa.Column("key", sa.String),
    sa.Column("value", sa.Text),
    sa.Column("source", sa.Text),
    sa.Column("created_at", sa.Text),
    sa.Column("updated_at", sa.Text),
    sa.Column("mac", sa.String(64)),
)
ledger = sa.Table(
    "ledger",
    _meta,
    sa.Column("seq", sa.BigInteger),
    sa.Column("entity_type", sa.String),
    sa.Column("entity_id", sa.String),
)
payloads = sa.Table(
    "ledger_payloads", _meta, sa.Column("seq", sa.BigInteger), sa.Column("body", sa.Text)
)


def upgrade() -> None:
    op.add_column("memories", sa.Column("mac", sa.String(64), nullable=True))
    op.add_column("project_state", sa.Column("mac", sa.String(64), nullable=True))
    conn = op.get_bind()
    has_rows = any(
        conn.execute(sa.select(sa.literal(1)).select_from(table).limit(1)).first() is not None
        for table in (memories, project_state)
    )
    if has_rows:
        _fill(conn)


def downgrade() -> None:
    # Plain DROP COLUMN on both engines (SQLite 3.35+): a batch copy of ``memories`` would drop
    # its full-text triggers with the old table.
    op.execute("ALTER TABLE project_state DROP COLUMN mac")
    op.execute("ALTER TABLE memories DROP COLUMN mac")


def _key() -> Any:
    from memwarden.audit.chain import ChainKey
    from memwarden.config import Settings

    settings = context.config.attributes.get("settings") or Settings()
    return ChainKey.load(settings.resolved_ledger_key_file)


def _fill(conn: sa.Connection) -> None:
    from memwarden.audit.keycheck import newest_rows_verify
    from memwarden.audit.rowmac import RowMacs
    from memwarden.errors import LedgerError
    from memwarden.observability.integrity.audit_gaps import replay_all

    key = _key()
    if newest_rows_verify(conn, key) is False:
        raise LedgerError(
            "the ledger key does not verify this store's newest ledger rows: row MACs made with "
            "it would fail on every read; point MEMWARDEN_LEDGER_KEY_FILE at the store's key"
        )
    macs = RowMacs(key)
    # On a store migrated from before 0017_metadata this runs first, without the column.
    has_metadata = "metadata" in {c["name"] for c in sa.inspect(conn).get_columns("memories")}
    gaps = replay_all(conn, metadata=has_metadata)
    refused = set(gaps.mismatched) | set(gaps.unrecorded)
    blessed = 0
    # The ORM-typed read gives datetimes the way every later read does.
    from memwarden.db import schema

    M = schema.memories
    columns = [M.c[name] for name in memories.c.keys() if name != "mac"]
    if has_metadata:
        columns.append(M.c.metadata)
    for row in conn.execute(sa.select(*columns)):
        if int(row.id) in refused:
            continue
        conn.execute(memories.update().where(memories.c.id == row.id).values(mac=macs.memory(row)))
        blessed += 1
    S = schema.project_state
    state_refused: list[str] = []
    columns = [S.c[name] for name in project_state.c.keys() if name != "mac"]
    for row in conn.execute(sa.select(*columns)):
        entity_id = json.dumps(
            [row.project, row.category, row.key], ensure_ascii=False, separators=(",", ":")
        )
        if _state_matches(conn, entity_id, row):
            conn.execute(
                project_state.update()
                .where(project_state.c.id == row.id)
                .values(mac=macs.state(row))
            )
            blessed += 1
        else:
            state_refused.append(entity_id)
    log.info(
        "row_macs_filled",
        blessed=blessed,
        memories_not_matching_ledger=sorted(refused),
        state_not_matching_ledger=state_refused,
    )


def _state_matches(conn: sa.Connection, entity_id: str, row: Any) -> bool:
    """Whether the entry's last ledger row's ``after`` is the entry as it stands."""
    from memwarden.audit.rowmac import iso

    body = conn.execute(
        sa.select(payloads.c.body)
        .select_from(ledger.join(payloads, payloads.c.seq == ledger.c.seq))
        .where(ledger.c.entity_type == "project_state", ledger.c.entity_id == entity_id)
        .order_by(ledger.c.seq.desc())
        .limit(1)
    ).scalar_one_or_none()
    if body is None:
        return False
    after = json.loads(body).get("after")
    return bool(after) and after == {
        "project": row.project,
        "category": row.category,
        "key": row.key,
        "value": row.value,
        "source": row.source,
        "created_at": iso(row.created_at),
        "updated_at": iso(row.updated_at),
    }
