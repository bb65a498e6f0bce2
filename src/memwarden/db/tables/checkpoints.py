"""Tables: Signed checkpoints: the Merkle tree over the ledger, the checkpoints and their publication."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    String,
    Table,
    Text,
)

from memwarden.db.tables.base import Id, UTCDateTime, metadata

# Signed checkpoints (migration 0016_checkpoints): the RFC 6962 tree over the ledger's tagged
# rows (complete subtrees of 256 leaves or more, and the frontier of the tree's right edge),
# every checkpoint signed, and every attempt to publish one off the machine. No foreign keys:
# the tree is derived data, rebuilt from the ledger whenever it is in doubt.
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
    Column("updated_at", UTCDateTime, nullable=False),
)

checkpoints = Table(
    "checkpoints",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("tree_size", BigInteger, nullable=False),
    Column("root", String(64), nullable=False),
    Column("note", Text, nullable=False),
    Column("trigger", String(16), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
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
    Column("created_at", UTCDateTime, nullable=False),
    Index("ix_checkpoint_publications_publisher", "publisher", "id"),
)
