"""PostgreSQL's default waits: a lock another session keeps, or a server that never answers,
ends in "database busy" / "database unreachable" (the storage faults: 503, an alert, a
one-line CLI refusal) instead of a call that hangs for good. libpq and PostgreSQL wait
forever by default; SQLite's counterpart is its busy timeout (30 s)."""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from cli_support import run_script
from conftest import PG_ADMIN_URL, require_postgres
from memwarden import Memwarden, Settings
from memwarden.db.engine import pg_url
from memwarden.db.faults import StorageUnavailableError
from memwarden.observability.faults import faults


def test_the_connect_timeout_is_the_operators_where_they_set_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("PGCONNECT_TIMEOUT", "PGSERVICE"):
        monkeypatch.delenv(name, raising=False)
    base = "postgresql+psycopg://u@db/test"
    assert pg_url(base, None, connect_timeout_s=10).query["connect_timeout"] == "10"
    assert (
        pg_url(f"{base}?connect_timeout=0", None, connect_timeout_s=10).query["connect_timeout"]
        == "0"
    )
    # A service's file may set one (and its options): the URL gets neither from memwarden.
    assert pg_url("postgresql+psycopg:///?service=tenant", None, connect_timeout_s=10).query == {
        "service": "tenant"
    }
    assert "connect_timeout" not in pg_url(base, None, connect_timeout_s=0).query
    for name in ("PGCONNECT_TIMEOUT", "PGSERVICE"):
        monkeypatch.setenv(name, "4" if name == "PGCONNECT_TIMEOUT" else "tenant")
        assert "connect_timeout" not in pg_url(base, None, connect_timeout_s=10).query
        monkeypatch.delenv(name)
    with_schema = pg_url(f"{base}?options=-cwork_mem%3D8MB", "tenant", connect_timeout_s=10)
    assert with_schema.query["options"] == "-cwork_mem=8MB -csearch_path=tenant"


def _pg_memwarden(url: str, tmp_path: Path, **knobs: int) -> Memwarden:
    """A store opened with ``knobs``, initialised without them: migrations take a lock every
    store on the server shares, which another test's ``init`` may hold past a short bound."""
    Memwarden.init(Settings(home=tmp_path / "home", database_url=url)).close()
    return Memwarden(Settings(home=tmp_path / "home", database_url=url, **knobs))


def _lock_timeout(url: str, tmp_path: Path, **knobs: int) -> str:
    mw = _pg_memwarden(url, tmp_path, **knobs)
    try:
        with mw.store.engine.connect() as conn:
            return str(conn.execute(sa.text("SHOW lock_timeout")).scalar())
    finally:
        mw.close()


def test_the_lock_wait_is_bounded_only_where_nothing_else_bounds_it(
    pg_schema_url: str, tmp_path: Path
) -> None:
    assert _lock_timeout(pg_schema_url, tmp_path / "default") == "30s"
    assert _lock_timeout(pg_schema_url, tmp_path / "off", pg_lock_timeout_ms=0) == "0"
    on_url = pg_schema_url.replace("options=", "options=-c%20lock_timeout%3D5s%20")
    assert _lock_timeout(on_url, tmp_path / "url") == "5s"
    # A role's own setting (as a database's, or postgresql.conf) is the operator's: kept.
    role = f"r_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(PG_ADMIN_URL)
    try:
        with admin.begin() as conn:
            conn.exec_driver_sql(f"CREATE ROLE {role} LOGIN")
            conn.exec_driver_sql(f"CREATE SCHEMA {role} AUTHORIZATION {role}")
            conn.exec_driver_sql(f"ALTER ROLE {role} SET lock_timeout = '7s'")
        as_role = sa.engine.make_url(PG_ADMIN_URL).set(username=role)
        rendered = as_role.render_as_string(hide_password=False)
        assert _lock_timeout(f"{rendered}?schema={role}", tmp_path / "role") == "7s"
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {role} CASCADE")
            conn.exec_driver_sql(f"DROP OWNED BY {role}")
            conn.exec_driver_sql(f"DROP ROLE {role}")
        admin.dispose()


def test_a_row_lock_kept_by_another_session_refuses_the_write(
    pg_schema_url: str, tmp_path: Path
) -> None:
    """An operator's open transaction keeps a memory's row locked. Before, an update of
    that memory waited for as long as the transaction stayed open (here: for good); now it
    is refused as "database busy" after the store's lock timeout, with its alert, and the
    memory is as it was."""
    mw = _pg_memwarden(pg_schema_url, tmp_path, pg_lock_timeout_ms=300)
    try:
        mw.add_project("atlas")
        subject = mw.remember("atlas", "before").memory
        outcome: list[BaseException | None] = []

        def update() -> None:
            try:
                mw.update(subject.id, content="while an operator holds the row")
                outcome.append(None)
            except BaseException as exc:  # noqa: BLE001 - handed to the test's thread
                outcome.append(exc)

        holder = sa.create_engine(pg_schema_url)
        try:
            with holder.connect() as conn:
                conn.execute(
                    sa.text("SELECT id FROM memories WHERE id = :id FOR UPDATE"),
                    {"id": subject.id},
                )
                worker = threading.Thread(target=update, daemon=True)
                worker.start()
                worker.join(15)
                assert not worker.is_alive(), "the update still waits on the row lock"
                conn.rollback()
        finally:
            holder.dispose()
        assert len(outcome) == 1 and isinstance(outcome[0], StorageUnavailableError)
        assert "database busy" in str(outcome[0])
        assert faults.is_active("storage:busy")
        assert mw.get(subject.id).content == "before"
        mw.update(subject.id, content="after")
        assert not faults.is_active("storage:busy")
        assert mw.verify().ok
    finally:
        mw.close()


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A port that accepts connections and never says a word (a hung server, a dropped
    network path past the handshake)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except TimeoutError:
                continue
            except OSError:
                return

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join(2)
        for conn in accepted:
            conn.close()
        listener.close()


def test_a_server_that_never_answers_is_unreachable_not_a_hang(
    silent_server: int, tmp_path: Path
) -> None:
    """The CLI against a PostgreSQL that accepts the connection and never answers: its
    alert and one error line, exit 1, in about the connect timeout. Before, libpq waited for as long as the socket
    stayed open (this test's 60 s guard)."""
    require_postgres()  # the same driver and the same path as a real server's
    started = time.monotonic()
    done = run_script(
        "memory",
        "list",
        "--project",
        "atlas",
        home=tmp_path / "home",
        database_url=f"postgresql+psycopg://root@127.0.0.1:{silent_server}/test",
        MEMWARDEN_PG_CONNECT_TIMEOUT_S="1",
    )
    took = time.monotonic() - started
    assert done.returncode == 1, done.stdout + done.stderr
    # The error line, after the storage fault's critical alert (logged to stderr).
    error = done.stderr.strip().splitlines()[-1]
    assert error.startswith("error: database unreachable"), done.stderr
    assert "connection timeout expired" in error
    assert "Traceback" not in done.stderr
    assert took < 30, f"took {took:.1f}s"
