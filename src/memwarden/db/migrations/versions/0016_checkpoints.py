"""Signed checkpoints: the Merkle tree over the ledger, the checkpoints made, their publication.

``merkle_nodes`` keeps the hash of every complete subtree of 256 leaves or more (level 8 and
up), so a proof reads at most a few hundred ledger rows; ``merkle_state`` keeps the tree's
size and frontier (one hash per set bit of the size), so a new tree head costs only the rows
added since. ``checkpoints`` keeps each signed checkpoint, ``checkpoint_publications`` each
attempt to send one off the machine.

Stands on 0001 alone (the ledger's tables), like the other branches.

Revision ID: 0016_checkpoints
Revises: 0001
Create Date: 2026-12-03
"""

from __future__ import annotations

from alembic import op
from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

revision = "0016_checkpoints"
down_revision = "0001"
branch_labels = None
depends_on = None

# Frozen copies of the tables as this revision creates them.
metadata = MetaData()
Id = BigInteger().with_variant(Integer(), "sqlite")

merkle_nodes = Table(
    "merkle_nodes",
    metadata,
    Column("level", Integer, primary_key=True, autoincrement=False),
    Column("idx", BigInteger, primary_key=True, autoincrement=False),
    Column("hash", String(64), nullable=False),
)

merkle_state = Table(
    "merkle_state",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("size", BigInteger, nullable=False),
    Column("frontier", Text, nullable=False),
    Column("root", String(64), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

checkpoints = Table(
    "checkpoints",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("tree_size", BigInteger, nullable=False),
    Column("root", String(64), nullable=False),
    Column("note", Text, nullable=False),
    Column("trigger", String(16), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ix_checkpoints_size", "tree_size"),
)

checkpoint_publications = Table(
    "checkpoint_publications",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("checkpoint_id", BigInteger, nullable=False),
    Column("publisher", String(20), nullable=False),
    Column("target", String(300), nullable=False),
    Column("state", String(10), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("error", Text, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ix_checkpoint_publications_publisher", "publisher", "id"),
)


def upgrade() -> None:
    bind = op.get_bind()
    for table in (merkle_nodes, merkle_state, checkpoints, checkpoint_publications):
        table.create(bind)


def downgrade() -> None:
    bind = op.get_bind()
    for table in (checkpoint_publications, checkpoints, merkle_state, merkle_nodes):
        table.drop(bind)
