"""PostgreSQL's default waits: a lock another session keeps, or a server that never answers,
ends in "database busy" / "database unreachable" (the storage faults: 503, an alert, a
one-line CLI refusal) instead of a call that hangs for good. libpq and PostgreSQL wait
forever by default; SQLite's counterpart is its busy timeout (30 s)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from cli_support import run_script
from conftest import require_postgres
from memwarden import Memwarden, Settings
from memwarden.db.engine import pg_url
from memwarden.db.faults import StorageUnavailableError
from memwarden.observability.faults import faults


def _options(url: sa.URL) -> str:
    value = url.query.get("options", "")
    return value[-1] if isinstance(value, tuple) else value


def test_the_operators_own_settings_win(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PGOPTIONS", raising=False)
    monkeypatch.delenv("PGCONNECT_TIMEOUT", raising=False)
    base = "postgresql+psycopg://u@db/test"
    plain = pg_url(base, None, lock_timeout_ms=30_000, connect_timeout_s=10)
    assert _options(plain) == "-clock_timeout=30000"
    assert plain.query["connect_timeout"] == "10"
    # Theirs after ours (the last setting wins); the schema's search_path after both.
    theirs = pg_url(
        f"{base}?options=-clock_timeout%3D5&connect_timeout=3",
        "tenant",
        lock_timeout_ms=30_000,
        connect_timeout_s=10,
    )
    assert _options(theirs) == "-clock_timeout=30000 -clock_timeout=5 -csearch_path=tenant"
    assert theirs.query["connect_timeout"] == "3"
    # Given options on the URL libpq ignores PGOPTIONS: it is carried over, not dropped.
    monkeypatch.setenv("PGOPTIONS", "-cwork_mem=8MB")
    monkeypatch.setenv("PGCONNECT_TIMEOUT", "4")
    carried = pg_url(base, None, lock_timeout_ms=1_000, connect_timeout_s=10)
    assert _options(carried) == "-clock_timeout=1000 -cwork_mem=8MB"
    assert "connect_timeout" not in carried.query  # libpq reads PGCONNECT_TIMEOUT itself
    off = pg_url(base, None, lock_timeout_ms=0, connect_timeout_s=0)
    assert "options" not in off.query and "connect_timeout" not in off.query


def _pg_memwarden(url: str, tmp_path: Path, **knobs: int) -> Memwarden:
    return Memwarden.init(Settings(home=tmp_path / "home", database_url=url, **knobs))


def test_a_store_waits_thirty_seconds_for_a_lock_by_default(
    pg_schema_url: str, tmp_path: Path
) -> None:
    mw = _pg_memwarden(pg_schema_url, tmp_path)
    try:
        with mw.store.engine.connect() as conn:
            assert conn.execute(sa.text("SHOW lock_timeout")).scalar() == "30s"
    finally:
        mw.close()


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
