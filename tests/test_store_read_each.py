"""``Store.read_each``: a single statement outside a transaction on PostgreSQL (an API key's
lookup on every request), and a pooled connection that is an ordinary one again afterwards."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa

from memwarden import Memwarden
from memwarden.db import schema
from memwarden.db.store import Store


def _in_transaction(conn: sa.Connection) -> bool:
    dbapi: Any = conn.connection.dbapi_connection
    if conn.dialect.name == "sqlite":
        return bool(dbapi.in_transaction)
    return str(dbapi.info.transaction_status.name) != "IDLE"


def test_one_statement_runs_outside_a_transaction_on_postgresql(mw: Memwarden) -> None:
    with mw.store.read_each() as conn:
        assert conn.execute(sa.select(schema.projects.c.name)).scalars().all() == ["atlas"]
        # SQLite's connections begin a transaction of their own (read_each is read there).
        assert _in_transaction(conn) is (mw.store.dialect == "sqlite")


def test_the_connection_is_transactional_again_after_it(mw: Memwarden) -> None:
    """The pooled connection read_each used goes back to transactions: a write that fails
    half-way leaves nothing, and a read is in a transaction. One connection in the pool, so
    the reads and the write below are sure to get the one read_each had."""
    if mw.store.dialect == "sqlite":
        pytest.skip("SQLite's read_each is read")
    store = Store(mw.settings, sa.create_engine(mw.store.engine.url, pool_size=1, max_overflow=0))
    try:
        with store.read_each() as conn:
            used = conn.connection.dbapi_connection
            conn.execute(sa.select(1))
            assert not _in_transaction(conn)
        with store.read() as conn:
            assert conn.connection.dbapi_connection is used
            conn.execute(sa.select(1))
            assert _in_transaction(conn)
        with pytest.raises(RuntimeError, match="half-way"):
            with store.write() as unit:
                assert unit.conn.connection.dbapi_connection is used
                unit.conn.execute(
                    sa.insert(schema.projects).values(name="half", created_at=datetime.now(UTC))
                )
                raise RuntimeError("half-way")
        with store.read() as conn:
            names = conn.execute(sa.select(schema.projects.c.name)).scalars().all()
        assert names == ["atlas"]
    finally:
        store.dispose()


def test_an_api_key_is_found_and_refused_through_it(mw: Memwarden) -> None:
    key, token = mw.create_key("reader", "read")
    found = mw.authenticate(token)
    assert found.ok and found.key is not None and found.key.name == "reader"
    mw.revoke_key("reader")
    refused = mw.authenticate(token)
    assert not refused.ok and "revoked" in (refused.reason or "")
    assert mw.authenticate("mwk_" + "0" * 40).key is None
