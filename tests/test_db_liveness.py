"""PostgreSQL: a pooled connection the server ended is found on checkout and replaced (the
caller never sees it), and a connection in use a moment ago is taken without a ping
(``db/liveness.py``)."""

from __future__ import annotations

import time
from typing import Any

import pytest
import sqlalchemy as sa

from conftest import PG_ADMIN_URL
from memwarden import Memwarden
from memwarden.audit import tail
from memwarden.db import liveness
from memwarden.db.faults import StorageUnavailableError
from memwarden.observability.faults import faults

POSTGRESQL = pytest.mark.parametrize("engine_name", ["postgresql"], indirect=True)


@pytest.fixture
def pings(mw: Memwarden, monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Every ping the pool's checkout sends."""
    sent: list[object] = []
    dialect = mw.store.engine.dialect
    real = dialect.do_ping

    def counted(dbapi_connection: Any) -> bool:
        sent.append(dbapi_connection)
        return bool(real(dbapi_connection))

    monkeypatch.setattr(dialect, "do_ping", counted)
    return sent


def _backends(mw: Memwarden) -> set[int]:
    """The server processes behind the pool's idle connections."""
    held = [mw.store.engine.connect() for _ in range(3)]
    try:
        return {int(c.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()) for c in held}
    finally:
        for conn in held:
            conn.close()


@POSTGRESQL
def test_a_connection_in_use_a_moment_ago_is_not_pinged(mw: Memwarden, pings: list[object]) -> None:
    for n in range(20):
        mw.remember("atlas", f"fact {n}")
    assert pings == []
    assert len(mw.list_memories()) == 20


@POSTGRESQL
def test_a_connection_idle_for_long_is_pinged(
    mw: Memwarden, pings: list[object], monkeypatch: pytest.MonkeyPatch
) -> None:
    mw.remember("atlas", "warms the pool")
    monkeypatch.setattr(liveness, "RECENT_S", 0.0)
    mw.remember("atlas", "after a long pause")
    assert pings


@POSTGRESQL
def test_a_connection_the_server_ended_is_replaced_unseen(
    mw: Memwarden, pings: list[object]
) -> None:
    """Idle in the pool when the server ended it (as a restart or an idle timeout does): the
    server's goodbye on the socket sends the checkout to a ping, which fails, and the pool
    connects anew. The caller's mutation succeeds, and nothing is lost."""
    mw.remember("atlas", "before")
    ended = _backends(mw)
    admin = sa.create_engine(PG_ADMIN_URL)
    try:
        with admin.connect() as conn:
            for pid in ended:
                conn.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    finally:
        admin.dispose()
    time.sleep(0.2)  # the goodbye reaches the client's socket
    created = mw.remember("atlas", "after").memory
    assert pings, "a connection with the server's goodbye on its socket was not pinged"
    assert _backends(mw).isdisjoint(ended)
    kept = {m.id: m.content for m in mw.list_memories()}
    assert sorted(kept.values()) == ["after", "before"] and kept[created.id] == "after"
    assert mw.verify().ok


def _end_backend(dbapi_connection: Any) -> None:
    """End the server process behind a connection, as a restart or an operator would."""
    admin = sa.create_engine(PG_ADMIN_URL)
    try:
        with admin.connect() as conn:
            conn.execute(
                sa.text("SELECT pg_terminate_backend(:pid)"),
                {"pid": dbapi_connection.info.backend_pid},
            )
    finally:
        admin.dispose()


@POSTGRESQL
@pytest.mark.parametrize("where", ["statement", "ledger append"])
def test_a_connection_the_server_ends_mid_mutation_is_a_storage_fault(
    mw: Memwarden, where: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server ends the connection while a mutation is under way: in the mutation's own
    statement, or just before the ledger's append (the script that inserts the entry and
    commits, sent through libpq). The caller gets the storage fault ("database unreachable":
    HTTP 503 with Retry-After, an MCP tool error, CLI exit 1, one alert), not the driver's
    own error; before, the append's case surfaced as a bare ``OperationalError`` ("the
    connection is lost", met in the rollback after it) with no alert. Nothing of the mutation
    is kept, and the next mutation, on a new connection, succeeds."""
    subject = mw.remember("atlas", "before").memory
    mw.remember("atlas", "primes the tail: the next append goes on it")
    ended: list[int] = []
    if where == "statement":

        def before_update(conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
            if not ended and statement.startswith("UPDATE memories"):
                driver = conn.connection.dbapi_connection
                ended.append(driver.info.backend_pid)
                _end_backend(driver)

        sa.event.listen(mw.store.engine, "before_cursor_execute", before_update)
    else:
        real = tail.libpq_exec

        def end_then_send(conn: Any, sql: str, *args: Any, **kwargs: Any) -> Any:
            if not ended and "COMMIT" in sql:
                driver = conn.connection.dbapi_connection
                ended.append(driver.info.backend_pid)
                _end_backend(driver)
            return real(conn, sql, *args, **kwargs)

        monkeypatch.setattr(tail, "libpq_exec", end_then_send)
    with pytest.raises(StorageUnavailableError, match="database unreachable"):
        mw.update(subject.id, content="changed while the server ended the connection")
    assert ended, f"the fault was not made at the {where}"
    assert faults.is_active("storage:unreachable")
    after = mw.remember("atlas", "after").memory
    assert not faults.is_active("storage:unreachable")  # the episode ended, with its notice
    contents = {m.id: m.content for m in mw.list_memories()}
    assert contents[subject.id] == "before" and contents[after.id] == "after"
    assert _backends(mw).isdisjoint(ended)
    assert mw.verify().ok


@POSTGRESQL
def test_a_lock_timeout_in_the_ledgers_append_refuses_the_mutation_whole(mw: Memwarden) -> None:
    """Another session holds the chain's lock past the connection's lock_timeout: the
    mutation is refused ("database busy", 503 with Retry-After) and nothing of it is kept.
    Before, the append's failure was taken for the ledger failing: the mutation committed
    without its entry (fail-open), and no retry could ever record it (found by an attack
    session). A ledger that fails in itself still fails open (tests/test_alerts_delivery.py)."""
    from memwarden.audit.ledger import CHAIN_LOCK_ID

    def short_lock_wait(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.execute("SET lock_timeout = 300")
        dbapi_connection.commit()

    mw.remember("atlas", "before")
    sa.event.listen(mw.store.engine, "connect", short_lock_wait)
    mw.store.dispose()  # every connection from here on waits 300 ms for a lock at most
    before = len(mw.list_memories())
    holder = sa.create_engine(PG_ADMIN_URL)
    try:
        with holder.connect() as conn:
            conn.execute(sa.text("SELECT pg_advisory_lock(:id)"), {"id": CHAIN_LOCK_ID})
            for attempt in range(3):  # the tail's path, then the ordinary one after its miss
                with pytest.raises(StorageUnavailableError, match="database busy"):
                    mw.remember("atlas", f"while the chain is locked {attempt}")
            assert faults.is_active("storage:busy")
            conn.execute(sa.text("SELECT pg_advisory_unlock(:id)"), {"id": CHAIN_LOCK_ID})
    finally:
        holder.dispose()
    assert len(mw.list_memories()) == before
    mw.remember("atlas", "after")
    assert not faults.is_active("storage:busy")
    assert mw.verify().ok
    assert mw.integrity_check().run.finding("audit_gaps") is None


def test_quiet_tells_an_ended_connection_from_a_live_one(pg_schema_url: str) -> None:
    engine = sa.create_engine(pg_schema_url)
    try:
        pq = engine.dialect.loaded_dbapi.pq
        with engine.connect() as conn:
            driver = conn.connection.dbapi_connection
            pid = int(conn.execute(sa.text("SELECT pg_backend_pid()")).scalar_one())
            conn.commit()
            assert liveness.quiet(driver, pq)
            conn.execute(sa.text("SELECT 1"))
            assert not liveness.quiet(driver, pq)  # inside a transaction
            conn.rollback()
            with sa.create_engine(PG_ADMIN_URL).connect() as admin:
                admin.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            deadline = time.monotonic() + 5
            while liveness.quiet(driver, pq) and time.monotonic() < deadline:
                time.sleep(0.01)
            assert not liveness.quiet(driver, pq)
            conn.invalidate()
    finally:
        engine.dispose()
