"""Faults of the machine under SQLite, made for real: a lock held past the busy timeout, a
read-only folder (a read-only bind mount: root ignores chmod), a full disk (a small tmpfs).
Each: one clear error (CLI one line and exit 1, HTTP 503 with a problem body, Retry-After for
the lock, an MCP tool error), nothing half-written, one critical alert per episode, /health
degraded, and a resolved notice once an operation succeeds again."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from mcp.server.mcpserver.exceptions import ToolError

from cli_support import Cli
from memwarden import Memwarden, Settings
from memwarden.api import create_app
from memwarden.db.driver import sqlite_driver
from memwarden.db.faults import StorageUnavailableError
from memwarden.mcp import _tool_errors
from memwarden.observability.alerts.default import reset_fallback
from memwarden.observability.faults import active_faults, faults

LOOPBACK = "http://127.0.0.1"


@pytest.fixture(autouse=True)
def _clean_register(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # A fault met before a memwarden is open (it would not open) reaches the fallback sinks,
    # built from the environment: the test's alerts file.
    monkeypatch.setenv("MEMWARDEN_ALERT_LOG", str(tmp_path / "keep" / "alerts.log"))
    reset_fallback()
    faults.reset()
    yield
    faults.reset()
    reset_fallback()


def _alerts(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _about(lines: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    return [line for line in lines if f"storage:{key}" in json.dumps(line)]


def _settings(tmp_path: Path, home: Path, **extra: Any) -> Settings:
    """Key, witness and alerts file outside ``home``: the sinks that still work."""
    return Settings(
        home=home,
        ledger_key_file=tmp_path / "keep" / "ledger.key",
        ledger_witness_file=tmp_path / "keep" / "ledger.head",
        alert_log=tmp_path / "keep" / "alerts.log",
        **extra,
    )


def test_a_lock_held_past_the_busy_timeout(tmp_path: Path) -> None:
    settings = _settings(tmp_path, tmp_path / "home", sqlite_busy_timeout_ms=200)
    mw = Memwarden.init(settings)
    mw.add_project("atlas")
    holder = sqlite_driver().module.connect(str(tmp_path / "home" / "memwarden.db"))
    holder.isolation_level = None
    holder.execute("BEGIN IMMEDIATE")
    try:
        for _ in range(2):
            with pytest.raises(StorageUnavailableError, match="database locked too long"):
                mw.remember("atlas", "Written while locked")
        assert [f.key for f in active_faults()] == ["storage:locked"]
        app = create_app(settings, memwarden=mw)
        with TestClient(app, base_url=LOOPBACK) as client:
            refused = client.post("/memory", json={"project": "atlas", "content": "Via HTTP"})
            assert refused.status_code == 503
            assert refused.headers["Retry-After"] == "5"
            assert refused.json()["error"]["code"] == "storage_unavailable"
            health = client.get("/health").json()
            assert health["status"] == "degraded"
            assert [f["key"] for f in health["faults"]] == ["storage:locked"]
        with pytest.raises(ToolError, match="storage_unavailable: database locked too long"):
            with _tool_errors():
                mw.remember("atlas", "Via MCP")
        cli = Cli(
            tmp_path / "home",
            MEMWARDEN_SQLITE_BUSY_TIMEOUT_MS="200",
            MEMWARDEN_LEDGER_KEY_FILE=str(tmp_path / "keep" / "ledger.key"),
            MEMWARDEN_LEDGER_WITNESS_FILE=str(tmp_path / "keep" / "ledger.head"),
            MEMWARDEN_ALERT_LOG=str(tmp_path / "keep" / "cli-alerts.log"),
        )
        line = cli.error("memory", "add", "Via the CLI", "-p", "atlas", "-t", "knowledge")
        assert "database locked too long" in line
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    kept = mw.remember("atlas", "Written after the lock").memory
    assert [m.content for m in mw.list_memories()] == [kept.content]  # nothing half-written
    assert active_faults() == []
    assert mw.verify().ok
    mw.close()
    lines = _about(_alerts(tmp_path / "keep" / "alerts.log"), "locked")
    assert [line["severity"] for line in lines].count("critical") == 1  # once per episode
    assert any("resolved" in json.dumps(line).lower() for line in lines)


@contextmanager
def _mounted(command: list[str], target: Path) -> Iterator[None]:
    subprocess.run(command, check=True)
    try:
        yield
    finally:
        subprocess.run(["umount", "-l", str(target)], check=False)


@contextmanager
def _renamed(mw: Memwarden, table: str) -> Iterator[None]:
    """``table`` renamed away under the running store for the block, then put back."""
    with mw.store.write() as unit:
        unit.conn.exec_driver_sql(f"ALTER TABLE {table} RENAME TO {table}_gone")
    try:
        yield
    finally:
        with mw.store.write() as unit:
            unit.conn.exec_driver_sql(f"ALTER TABLE {table}_gone RENAME TO {table}")


def test_a_read_only_folder(tmp_path: Path) -> None:
    real, view = tmp_path / "real", tmp_path / "view"
    view.mkdir()
    with Memwarden.init(_settings(tmp_path, real)) as mw:
        mw.add_project("atlas")
        mw.remember("atlas", "Written before the remount")
    with _mounted(["mount", "--bind", str(real), str(view)], view):
        subprocess.run(["mount", "-o", "remount,ro,bind", str(view)], check=True)
        settings = _settings(tmp_path, view)
        with pytest.raises(StorageUnavailableError, match="read-only") as refused:
            with Memwarden(settings) as mw:
                mw.remember("atlas", "Refused")
        assert refused.value.retry_after is None
        assert [f.key for f in active_faults()] == ["storage:read_only"]
        cli = Cli(
            view,
            MEMWARDEN_LEDGER_KEY_FILE=str(tmp_path / "keep" / "ledger.key"),
            MEMWARDEN_LEDGER_WITNESS_FILE=str(tmp_path / "keep" / "ledger.head"),
            MEMWARDEN_ALERT_LOG=str(tmp_path / "keep" / "cli-alerts.log"),
        )
        assert "read-only" in cli.error("memory", "add", "x", "-p", "atlas", "-t", "knowledge")
    with Memwarden(_settings(tmp_path, real)) as mw:
        assert [m.content for m in mw.list_memories()] == ["Written before the remount"]
        mw.remember("atlas", "Writable again")
        assert active_faults() == []
        assert mw.verify().ok
    lines = _about(_alerts(tmp_path / "keep" / "alerts.log"), "read_only")
    assert [line["severity"] for line in lines].count("critical") == 1


def test_a_full_disk(tmp_path: Path) -> None:
    disk = tmp_path / "disk"
    disk.mkdir()
    with _mounted(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(disk)], disk):
        settings = _settings(tmp_path, disk / "home")
        mw = Memwarden.init(settings)
        mw.add_project("atlas")
        acknowledged: list[int] = []
        with pytest.raises(StorageUnavailableError, match="disk full"):
            for index in range(500):
                text = f"Memory {index} " + "padding words " * 600
                acknowledged.append(mw.remember("atlas", text).memory.id)
        assert acknowledged, "some writes fit before the disk filled"
        assert [f.key for f in active_faults()] == ["storage:disk_full"]
        assert sorted(m.id for m in mw.list_memories(limit=500)) == sorted(acknowledged)
        mw.close()
        # Room again (the test's own way: a bigger tmpfs); the next write ends the episode.
        subprocess.run(["mount", "-o", "remount,size=8m", str(disk)], check=True)
        with Memwarden(settings) as mw:
            mw.remember("atlas", "Room again")
            assert active_faults() == []
            assert sorted(m.id for m in mw.list_memories(limit=500))[:-1] == sorted(acknowledged)
            assert mw.verify().ok
    lines = _about(_alerts(tmp_path / "keep" / "alerts.log"), "disk_full")
    assert [line["severity"] for line in lines].count("critical") == 1


@pytest.mark.parametrize("engine_name", ["sqlite", "postgresql"], indirect=True)
def test_a_pool_with_every_connection_in_use_is_a_busy_database(
    mw: Memwarden, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every pooled connection held past the pool's wait (statements held up by a lock, a
    burst of requests): a storage fault ("database busy", 503 with Retry-After), not the
    pool's own TimeoutError (an HTTP 500; found by an attack session)."""
    pool = mw.store.engine.pool
    monkeypatch.setattr(pool, "_timeout", 0.2)
    held = []
    try:
        while True:
            try:
                held.append(mw.store.engine.connect())
            except Exception:  # noqa: BLE001 - the pool is exhausted: every connection is held
                break
        with pytest.raises(StorageUnavailableError, match="database busy"):
            mw.remember("atlas", "while every connection is held")
    finally:
        for conn in held:
            conn.close()
    mw.remember("atlas", "once they are back")
    assert [m.content for m in mw.list_memories()] == ["once they are back"]


@pytest.mark.parametrize("engine_name", ["sqlite", "postgresql"], indirect=True)
def test_a_table_missing_under_a_running_store_is_a_damaged_schema(
    mw: Memwarden, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A table memwarden needs renamed or dropped under it: the storage fault "database schema
    damaged" (503, one alert, /health degraded), not an HTTP 500 "internal error" with /health
    ok (found by an attack session). Renamed back, the next write finds the schema whole and
    ends it (the store looks at most once a second: here at every write)."""
    monkeypatch.setattr("memwarden.db.store.DAMAGE_RECHECK_S", 0.0)
    mw.remember("atlas", "before")
    with _renamed(mw, "memories"):
        with pytest.raises(StorageUnavailableError, match="database schema damaged"):
            mw.remember("atlas", "while the table is gone")
        assert "storage:damaged" in [f.key for f in active_faults()]
        app = create_app(mw.settings, memwarden=mw)
        with TestClient(app, base_url=LOOPBACK) as client:
            refused = client.post("/memory", json={"project": "atlas", "content": "Via HTTP"})
            assert refused.status_code == 503
            assert refused.json()["error"]["code"] == "storage_unavailable"
    mw.remember("atlas", "after")
    assert "storage:damaged" not in [f.key for f in active_faults()]
    assert sorted(m.content for m in mw.list_memories()) == ["after", "before"]


@pytest.mark.parametrize("engine_name", ["sqlite", "postgresql"], indirect=True)
def test_a_damaged_schema_is_not_ended_by_a_write_that_missed_the_missing_table(
    mw: Memwarden, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write to other tables committed while ``memories`` was gone, and "schema damaged"
    ended with it, to come back (a new alert) at the next call that needed the table: a fault
    that flapped with every call (found by an attack session). It ends once the schema is
    whole; ``doctor`` names what is missing meanwhile."""
    monkeypatch.setattr("memwarden.db.store.DAMAGE_RECHECK_S", 0.0)
    mw.remember("atlas", "before")
    with _renamed(mw, "memories"):
        with pytest.raises(StorageUnavailableError, match="database schema damaged"):
            mw.remember("atlas", "while the table is gone")
        mw.set_state("atlas", "pad", "deluge", "armed")  # committed: other tables
        assert "storage:damaged" in [f.key for f in active_faults()]
        cli = Cli(mw.settings.home, mw.settings.database_url)
        report = json.loads(cli.run("doctor", "--json", code=1).stdout)
        database = next(c for c in report["checks"] if c["name"] == "database")
        assert database["status"] == "fail"
        assert "table memories" in database["missing"]
        assert "lacks table memories" in database["detail"]
    assert "storage:damaged" not in [f.key for f in active_faults()]  # whole again: over
    mw.alerts.flush()
    damaged = [a for a in mw.alerts.history(limit=200) if a.title == "database schema damaged"]
    assert [a.severity for a in damaged] == ["critical"]  # one episode, one alert


@pytest.mark.parametrize("engine_name", ["sqlite"], indirect=True)
def test_a_missing_full_text_index_is_a_damaged_schema_until_it_is_back(
    mw: Memwarden, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite's full-text tables are made by the migrations' own SQL, outside the metadata the
    schema check read: with ``memories_fts`` gone every recall failed, and every write in
    between found the schema "whole" and ended the fault (an alert per recall)."""
    monkeypatch.setattr("memwarden.db.store.DAMAGE_RECHECK_S", 0.0)
    mw.remember("atlas", "the deluge valves open at T-16 s", status="active")
    with _renamed(mw, "memories_fts"):
        for _ in range(2):
            with pytest.raises(StorageUnavailableError, match="database schema damaged"):
                mw.recall("deluge", "atlas")
            mw.set_state("atlas", "pad", "deluge", "armed")  # a write elsewhere commits
            assert "storage:damaged" in [f.key for f in active_faults()]
    assert "storage:damaged" not in [f.key for f in active_faults()]
    assert mw.recall("deluge", "atlas")
    mw.alerts.flush()
    damaged = [a for a in mw.alerts.history(limit=200) if a.title == "database schema damaged"]
    assert len(damaged) == 1
