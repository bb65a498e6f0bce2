"""Tables: API keys and dashboard sign-outs: who may call, and which sessions ended."""

from __future__ import annotations

from sqlalchemy import (
    Column,
    Index,
    String,
    Table,
    Text,
    text,
)

from memwarden.db.tables.base import Id, UTCDateTime, metadata

# API keys (migration 0004_api_keys): only a hash of each key is kept; a name has at most one
# live (unrevoked) key, so ``api:<name>`` always means one key at a time.
api_keys = Table(
    "api_keys",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("name", String(100), nullable=False),
    Column("role", String(10), nullable=False),
    Column("prefix", String(16), nullable=False),
    Column("key_hash", String(64), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("revoked_at", UTCDateTime, nullable=True),
    # Scopes (migration 0014_provenance): JSON; null means the role's defaults.
    Column("scopes", Text, nullable=True),
    Index("uq_api_keys_prefix", "prefix", unique=True),
    Index(
        "uq_api_keys_live_name",
        "name",
        unique=True,
        sqlite_where=text("revoked_at IS NULL"),
        postgresql_where=text("revoked_at IS NULL"),
    ),
)


# Dashboard sessions ended by signing out (migration 0014_provenance): the cookie is signed
# and stateless, so its nonce is kept here until the cookie would have expired anyway.
dashboard_signouts = Table(
    "dashboard_signouts",
    metadata,
    Column("nonce", String(64), primary_key=True),
    Column("expires_at", UTCDateTime, nullable=False),
    Index("ix_dashboard_signouts_expires", "expires_at"),
)
