"""PostgreSQL: a transaction's BEGIN sent in front of its first statement (one round trip
fewer a create) is the BEGIN psycopg would send, and the transaction it opens is the one
SQLAlchemy commits or rolls back."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from memwarden import Memwarden
from memwarden.audit.statements import DriverScript, _begin_prefix

_NEXT = DriverScript(sa.text("SELECT nextval(pg_get_serial_sequence('memories', 'id'))"))


def _status(conn: sa.Connection) -> int:
    driver: Any = conn.connection.dbapi_connection
    return int(driver.info.transaction_status)


@pytest.mark.parametrize("engine_name", ["postgresql"], indirect=True)
def test_the_begin_follows_the_connection_s_isolation_level(mw: Memwarden) -> None:
    engine = mw.store.engine
    engine.dispose()  # one pooled connection from here on
    with engine.connect() as conn:
        # An API key's look-up reads in autocommit; handed back, SQLAlchemy sets the
        # connection's isolation level explicitly (the default, READ COMMITTED).
        conn.execution_options(isolation_level="AUTOCOMMIT").execute(sa.text("SELECT 1"))
    with engine.connect() as conn:
        with conn.begin():
            assert _begin_prefix(conn) == "BEGIN ISOLATION LEVEL READ COMMITTED; "
            _NEXT.fetch_text(conn)
            assert _status(conn) == 2  # in a transaction: psycopg sends no BEGIN of its own
            conn.execute(
                sa.text("INSERT INTO projects (name, created_at) VALUES ('scratch', now())")
            )
            assert _begin_prefix(conn) == ""  # inside one: nothing in front
            conn.rollback()
        assert (
            conn.execute(
                sa.text("SELECT count(*) FROM projects WHERE name = 'scratch'")
            ).scalar_one()
            == 0
        )
        conn.rollback()
        with conn.execution_options(isolation_level="REPEATABLE READ").begin():
            assert _begin_prefix(conn) == "BEGIN ISOLATION LEVEL REPEATABLE READ; "
            _NEXT.fetch_text(conn)
            level = conn.execute(sa.text("SHOW transaction_isolation")).scalar_one()
            assert level == "repeatable read"
    with engine.connect() as conn:
        auto = conn.execution_options(isolation_level="AUTOCOMMIT")
        assert _begin_prefix(auto) is None  # autocommit: through the driver, no BEGIN
    created = mw.remember("atlas", "a create after the connection was used in autocommit")
    assert mw.get(created.memory.id).content.startswith("a create after")
    assert mw.verify().ok
