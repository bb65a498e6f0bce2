"""The store: SQLite's per-connection settings, transactions, foreign keys, on both engines."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from core_support import db_state
from memwarden import Memwarden, Settings
from memwarden.db import schema
from memwarden.db.store import Store

SYNCHRONOUS = {"OFF": 0, "NORMAL": 1, "FULL": 2, "EXTRA": 3}


def pragmas(store: Store) -> dict[str, object]:
    with store.engine.connect() as conn:
        return {
            name: conn.exec_driver_sql(f"PRAGMA {name}").scalar()
            for name in ("journal_mode", "foreign_keys", "busy_timeout", "synchronous")
        }


def sqlite_settings(tmp_path: Path, **overrides: object) -> Settings:
    return Settings(home=tmp_path / "home", **overrides)  # type: ignore[arg-type]


def test_sqlite_defaults(tmp_path: Path) -> None:
    with Memwarden.init(sqlite_settings(tmp_path)) as mw:
        assert pragmas(mw.store) == {
            "journal_mode": "wal",
            "foreign_keys": 1,
            "busy_timeout": 30_000,
            "synchronous": SYNCHRONOUS["NORMAL"],
        }


@pytest.mark.parametrize("level", ["FULL", "full", "EXTRA", "OFF", "NORMAL"])
def test_sqlite_synchronous_is_configurable(tmp_path: Path, level: str) -> None:
    store = Store(sqlite_settings(tmp_path, sqlite_synchronous=level, sqlite_busy_timeout_ms=1234))
    try:
        found = pragmas(store)
    finally:
        store.dispose()
    assert found["synchronous"] == SYNCHRONOUS[level.upper()]
    assert found["busy_timeout"] == 1234


def test_sqlite_synchronous_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MEMWARDEN_SQLITE_SYNCHRONOUS", "FULL")
    monkeypatch.setenv("MEMWARDEN_HOME", str(tmp_path / "home"))
    settings = Settings()
    assert settings.sqlite_synchronous == "FULL"
    store = Store(settings)
    try:
        assert pragmas(store)["synchronous"] == SYNCHRONOUS["FULL"]
    finally:
        store.dispose()


def test_sqlite_synchronous_refuses_nonsense() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        Settings(sqlite_synchronous="sometimes")  # type: ignore[arg-type]


def test_every_sqlite_connection_gets_the_settings(tmp_path: Path) -> None:
    """Several connections open at once (the pool hands out distinct ones): each is set up."""
    store = Store(sqlite_settings(tmp_path, sqlite_synchronous="FULL"))
    connections = [store.engine.connect() for _ in range(4)]
    try:
        raw_ids = {id(conn.connection.dbapi_connection) for conn in connections}
        assert len(raw_ids) == 4
        for conn in connections:
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30_000
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    finally:
        for conn in connections:
            conn.close()
        store.dispose()
    # and a connection made on another thread too
    store = Store(sqlite_settings(tmp_path))
    seen: list[object] = []

    def probe() -> None:
        seen.append(pragmas(store)["foreign_keys"])

    thread = threading.Thread(target=probe)
    thread.start()
    thread.join()
    store.dispose()
    assert seen == [1]


def test_a_sqlite_writer_waits_for_another_instead_of_failing(tmp_path: Path) -> None:
    settings = sqlite_settings(tmp_path)
    with Memwarden.init(settings) as first, Memwarden(settings) as second:
        first.add_project("atlas")
        holder = first.store.engine.connect().execution_options(memwarden_write=True)
        transaction = holder.begin()  # BEGIN IMMEDIATE: the write lock, held
        result: list[object] = []
        thread = threading.Thread(target=lambda: result.append(second.remember("atlas", "Waited")))
        thread.start()
        thread.join(timeout=0.5)
        assert thread.is_alive() and not result
        transaction.commit()
        holder.close()
        thread.join(timeout=30)
        assert len(result) == 1
        assert [m.content for m in first.list_memories()] == ["Waited"]


# -- both engines ------------------------------------------------------------------------------


def test_foreign_keys_are_enforced(mw: Memwarden) -> None:
    now = datetime.now(UTC)
    before = db_state(mw)
    with pytest.raises(sa.exc.IntegrityError), mw.store.write() as unit:
        unit.conn.execute(
            sa.insert(schema.memories).values(
                project="ghost",
                type="knowledge",
                content="x",
                content_hash="x",
                confidence=0.5,
                status="candidate",
                reinforcement_count=0,
                created_at=now,
                updated_at=now,
            )
        )
    with pytest.raises(sa.exc.IntegrityError), mw.store.write() as unit:
        unit.conn.execute(
            sa.insert(schema.source_chunks).values(
                document_id=999,
                project="atlas",
                ordinal=0,
                heading="",
                content="x",
                created_at=now,
            )
        )
    assert db_state(mw) == before


def test_the_live_content_index_is_unique(mw: Memwarden) -> None:
    memory = mw.remember("atlas", "Only once").memory
    now = datetime.now(UTC)
    with pytest.raises(sa.exc.IntegrityError), mw.store.write() as unit:
        unit.conn.execute(
            sa.insert(schema.memories).values(
                project="atlas",
                type="knowledge",
                content="ONLY ONCE",
                content_hash=memory.content_hash,
                confidence=0.5,
                status="active",
                reinforcement_count=0,
                created_at=now,
                updated_at=now,
            )
        )
    mw.reject(memory.id)
    again = mw.remember("atlas", "Only once").memory  # no longer live: a new one is fine
    assert again.content_hash == memory.content_hash and again.id != memory.id


def test_a_failed_write_rolls_back_and_runs_no_after_commit_hook(mw: Memwarden) -> None:
    before = db_state(mw)
    ran: list[str] = []
    with pytest.raises(RuntimeError), mw.store.write() as unit:
        unit.after_commit.append(lambda: ran.append("after"))
        unit.conn.execute(
            sa.insert(schema.projects).values(
                name="temp", description="", created_at=datetime.now(UTC)
            )
        )
        raise RuntimeError("boom")
    assert db_state(mw) == before and ran == []
    with mw.store.write() as unit:
        unit.after_commit.append(lambda: ran.append("after"))
    assert ran == ["after"]


def test_a_failed_mutation_leaves_no_ledger_entry(mw: Memwarden) -> None:
    before = db_state(mw)
    with pytest.raises(RuntimeError), mw.runtime.mutation() as m:
        m.conn.execute(
            sa.insert(schema.projects).values(name="temp", description="", created_at=m.now)
        )
        m.record("project", "temp", "temp", "created", None, {"name": "temp"})
        raise RuntimeError("boom")
    assert db_state(mw) == before


def test_the_ledger_is_append_only_in_the_database(mw: Memwarden) -> None:
    mw.remember("atlas", "Audited")
    before = db_state(mw)
    for statement in ("UPDATE ledger SET actor = 'forger'", "DELETE FROM ledger"):
        with pytest.raises(sa.exc.DBAPIError, match="append-only"), mw.store.write() as unit:
            unit.conn.execute(sa.text(statement))
    assert db_state(mw) == before


def test_timestamps_come_back_as_utc(mw: Memwarden) -> None:
    memory = mw.remember("atlas", "Timed").memory
    stored = mw.get(memory.id)
    assert stored.created_at.utcoffset() is not None
    assert stored.created_at.utcoffset().total_seconds() == 0  # type: ignore[union-attr]
    assert abs((datetime.now(UTC) - stored.created_at).total_seconds()) < 60
