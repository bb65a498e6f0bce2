"""Which SQLite memwarden runs on (a known, current one, or a clear refusal), private files
whatever the umask, and what `memwarden doctor` says about storage."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy.pool import QueuePool

from cli_support import Cli
from memwarden import Memwarden, Settings
from memwarden.db import driver
from memwarden.db.engine import make_engine, sqlite_path
from memwarden.db.store import Store
from memwarden.errors import StorageError
from memwarden.observability.alerts import emit_alert


def _fake(version: tuple[int, int, int]) -> Any:
    return SimpleNamespace(sqlite_version_info=version)


def _loader(sqlean: tuple[int, int, int] | None, stdlib: tuple[int, int, int]) -> Any:
    def load(name: str) -> Any:
        if name == "sqlean":
            if sqlean is None:
                raise ImportError("no sqlean")
            return _fake(sqlean)
        return _fake(stdlib)

    return load


def test_the_driver_is_sqlean_else_a_recent_enough_stdlib_else_a_refusal() -> None:
    chosen = driver.choose(loader=_loader((3, 50, 4), (3, 40, 1)))
    assert (chosen.name, chosen.version) == ("sqlean", (3, 50, 4))
    chosen = driver.choose(loader=_loader(None, (3, 46, 0)))
    assert (chosen.name, chosen.version_text) == ("stdlib", "3.46.0")
    with pytest.raises(StorageError) as refused:
        driver.choose(loader=_loader(None, (3, 40, 1)))
    message = str(refused.value)
    assert "sqlean-py is not installed" in message and "3.40.1" in message
    assert "pip install 'sqlean-py>=3.45.1'" in message
    with pytest.raises(StorageError, match="older than"):
        driver.choose("sqlean", loader=_loader((3, 41, 0), (3, 50, 0)))


def test_the_real_choice_here() -> None:
    chosen = driver.sqlite_driver()
    assert chosen.name == "sqlean" and chosen.version >= driver.SQLITE_FLOOR


def test_an_old_stdlib_sqlite_refuses_to_open_with_what_to_install(tmp_path: Path) -> None:
    stdlib = tuple(sqlite3.sqlite_version_info)
    cli = Cli(tmp_path / "home", MEMWARDEN_SQLITE_DRIVER="stdlib")
    if stdlib >= driver.SQLITE_FLOOR:
        cli.run("init")  # a recent enough system SQLite is used as it is
        return
    line = cli.error("init")
    assert "older than 3.45.1" in line and "pip install" in line
    assert not (tmp_path / "home" / "memwarden.db").exists()


@pytest.fixture
def wide_umask() -> Iterator[None]:
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_files_are_private_whatever_the_umask(tmp_path: Path, wide_umask: None) -> None:
    home = tmp_path / "deep" / "home"
    settings = Settings(home=home)
    with Memwarden.init(settings) as mw:
        mw.add_project("atlas")
        mw.remember("atlas", "private by default")
        emit_alert("warning", "a test alert", "for the alerts file", {})
        assert mw.alerts.flush(10)
        names = {p.name: _mode(p) for p in home.iterdir() if p.is_file()}
    assert _mode(home) == 0o700 and _mode(home.parent) == 0o700
    for name in ("memwarden.db", "memwarden.db-wal", "memwarden.db-shm", "ledger.key"):
        assert names[name] == 0o600, name
    assert names["ledger.head"] == 0o600 and names["alerts.log"] == 0o600
    assert all(mode & 0o077 == 0 for mode in names.values()), names


def test_doctor_reports_sqlite_index_and_wide_files(tmp_path: Path, wide_umask: None) -> None:
    cli = Cli(tmp_path / "home")
    cli.run("init")
    report = json.loads(cli.run("doctor", "--json").stdout)
    checks = {c["name"]: c for c in report["checks"]}
    assert checks["sqlite_library"]["status"] == "ok"
    assert checks["sqlite_library"]["driver"] == "sqlean"
    assert checks["sqlite_library"]["sqlite_version"].startswith("3.")
    assert checks["fulltext_index"]["status"] == "ok"
    assert checks["file_permissions"]["status"] == "ok"
    assert checks["erasures"]["status"] == "ok"
    os.chmod(tmp_path / "home" / "memwarden.db", 0o644)
    os.chmod(tmp_path / "home", 0o755)
    warned = json.loads(cli.run("doctor", "--json").stdout)
    permissions = next(c for c in warned["checks"] if c["name"] == "file_permissions")
    assert permissions["status"] == "warn" and warned["ok"] is True
    assert any("memwarden.db is 644" in w for w in permissions["wide"])
    assert any(w.endswith("is 755 (want 700)") for w in permissions["wide"])


def test_migration_0011_sets_fts5_secure_delete_and_takes_it_back(settings: Settings) -> None:
    """Up: the erasures table and (SQLite) secure-delete on both full-text indexes; down to
    0011's parent: both gone; up again. Both engines."""
    import sqlalchemy as sa

    from memwarden.db import migrate
    from memwarden.db.store import Store

    def state(store: Store) -> tuple[bool, dict[str, object]]:
        with store.engine.connect() as conn:
            has_table = "erasures" in sa.inspect(conn).get_table_names()
            options = {}
            if store.is_sqlite:
                for fts in ("memories_fts", "chunks_fts"):
                    options[fts] = conn.exec_driver_sql(
                        f"SELECT v FROM {fts}_config WHERE k = 'secure-delete'"  # noqa: S608
                    ).scalar_one_or_none()
        return has_table, options

    Memwarden.init(settings).close()
    store = Store(settings)
    try:
        on = {"memories_fts": 1, "chunks_fts": 1} if store.is_sqlite else {}
        off = {"memories_fts": 0, "chunks_fts": 0} if store.is_sqlite else {}
        assert state(store) == (True, on)
        migrate.downgrade(store, "0011_storage@-1")
        assert state(store) == (False, off)
        migrate.upgrade(store)
        assert state(store) == (True, on)
    finally:
        store.dispose()


def test_a_file_pool_hands_out_the_connection_used_last(tmp_path: Path) -> None:
    """SQLite drops a connection's page cache when another connection committed since its
    last transaction: with connections taken in turn, every write read its pages again.
    (On a bare store: a memwarden's own threads would take connections from the pool too.)"""
    settings = Settings(home=tmp_path / "home")
    Memwarden.init(settings).close()
    store = Store(settings)
    try:
        first, second = store.engine.raw_connection(), store.engine.raw_connection()
        last_returned = second.driver_connection
        first.close()
        second.close()  # the pool holds two; this one went back last
        served = []
        for _ in range(4):
            with store.write() as unit:
                served.append(unit.conn.connection.dbapi_connection)
            with store.read() as conn:
                served.append(conn.connection.dbapi_connection)
        assert all(conn is last_returned for conn in served)
    finally:
        store.close()


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("sqlite:////srv/m.db", "/srv/m.db"),
        ("sqlite:///rel/m.db", "rel/m.db"),
        ("sqlite:///file:/srv/m.db?uri=true", "/srv/m.db"),
        ("sqlite:///file:///srv/m.db?uri=true&mode=rwc", "/srv/m.db"),
        ("sqlite:///file://localhost/srv/m.db?uri=true", "/srv/m.db"),
        ("sqlite:///file:/srv/my%20m.db?uri=true", "/srv/my m.db"),
        ("sqlite:///file:rel/m.db?uri=true", "rel/m.db"),
        # Without uri=true SQLite opens a file of that very name.
        ("sqlite:///file:m.db", "file:m.db"),
        ("sqlite://", None),
        ("sqlite:///:memory:", None),
        ("sqlite:///file::memory:?uri=true", None),
        ("sqlite:///file:scratch?mode=memory&uri=true", None),
        ("postgresql+psycopg://u@h/db", None),
    ],
)
def test_the_file_a_sqlite_url_names(url: str, expected: str | None) -> None:
    assert sqlite_path(url) == (None if expected is None else Path(expected))


def test_a_sqlite_uri_naming_a_remote_host_is_refused() -> None:
    with pytest.raises(StorageError, match="only a local file"):
        sqlite_path("sqlite:///file://fileserver/srv/m.db?uri=true")


def test_a_store_opened_by_sqlite_uri_uses_that_file_and_leaves_no_stray_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The file checks, its private mode and the WAL's place concern the file SQLite opens;
    before, the URI's text was taken as a relative path and a ``file:`` folder appeared in the
    working directory with an empty file in it."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    database = tmp_path / "data" / "my memory.db"
    url = f"sqlite:///file:{str(database).replace(' ', '%20')}?uri=true"
    mw = Memwarden.init(Settings(home=tmp_path / "home", database_url=url))
    try:
        mw.add_project("atlas")
        mw.remember("atlas", "The launch window opens in March")
    finally:
        mw.close()
    assert list(work.iterdir()) == []
    assert stat.S_IMODE(database.stat().st_mode) == 0o600
    with sqlite3.connect(database) as conn:
        assert conn.execute("SELECT count(*) FROM memories").fetchone() == (1,)


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///file:scratch?mode=memory&uri=true"])
def test_an_in_memory_database_gets_its_own_pool(
    tmp_path: Path, url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An in-memory database keeps one connection a thread: no queue to order, and the
    engine is still made (a LIFO option there would be refused). No file is made for it."""
    monkeypatch.chdir(tmp_path)
    engine = make_engine(Settings(home=tmp_path / "home", database_url=url))
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT 1").scalar() == 1
        assert not isinstance(engine.pool, QueuePool)
    finally:
        engine.dispose()
    assert list(tmp_path.iterdir()) == []
