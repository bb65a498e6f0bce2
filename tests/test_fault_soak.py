"""The fault cases, over and over (``make soak``): episodes of a lock held past the busy
timeout and of PostgreSQL restarting under writers. Every episode: the writes it refused are
clear errors, none acknowledged is lost, one critical alert and one resolved notice. The
default run's versions are tests/test_storage_faults.py and test_storage_pg_restart.py."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from memwarden import Memwarden, Settings
from memwarden.db.driver import sqlite_driver
from memwarden.db.faults import StorageUnavailableError
from memwarden.observability.alerts.default import reset_fallback
from memwarden.observability.faults import active_faults, faults
from pg_cluster_support import available, cluster
from storage_soak_support import write_figures

LOCK_EPISODES = 50
RESTART_EPISODES = 10


@pytest.fixture(autouse=True)
def _clean_register(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("MEMWARDEN_ALERT_LOG", str(tmp_path / "home" / "alerts.log"))
    reset_fallback()
    faults.reset()
    yield
    faults.reset()
    reset_fallback()


def _severities(path: Path, key: str) -> list[str]:
    return [
        json.loads(line)["severity"]
        for line in path.read_text().splitlines()
        if f"storage:{key}" in line
    ]


@pytest.mark.soak
def test_lock_episodes(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home", sqlite_busy_timeout_ms=100)
    mw = Memwarden.init(settings)
    mw.add_project("atlas")
    acknowledged, refused = [], 0
    for episode in range(LOCK_EPISODES):
        holder = sqlite_driver().module.connect(str(tmp_path / "home" / "memwarden.db"))
        holder.isolation_level = None
        holder.execute("BEGIN IMMEDIATE")
        try:
            for _ in range(3):
                with pytest.raises(StorageUnavailableError, match="locked"):
                    mw.remember("atlas", f"refused {episode}")
                refused += 1
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        acknowledged.append(mw.remember("atlas", f"kept {episode}").memory.id)
        assert active_faults() == []
    assert sorted(m.id for m in mw.list_memories(limit=500)) == sorted(acknowledged)
    assert mw.verify().ok
    mw.close()
    severities = _severities(tmp_path / "home" / "alerts.log", "locked")
    assert severities == ["critical", "info"] * LOCK_EPISODES
    write_figures(
        "faults-lock",
        {
            "episodes": LOCK_EPISODES,
            "refused_writes": refused,
            "acknowledged_writes": len(acknowledged),
            "lost": 0,
            "critical_alerts": severities.count("critical"),
            "resolved_notices": severities.count("info"),
        },
    )


@pytest.mark.soak
def test_postgresql_restart_episodes(tmp_path: Path) -> None:
    reason = available()
    if reason is not None:
        pytest.skip(reason)
    with cluster() as pg:
        settings = Settings(home=tmp_path / "home", database_url=pg.url)
        mw = Memwarden.init(settings)
        mw.add_project("atlas")
        acknowledged, refused = [], 0
        for episode in range(RESTART_EPISODES):
            pg.stop()
            with pytest.raises(StorageUnavailableError, match="unreachable"):
                mw.remember("atlas", f"refused {episode}")
            refused += 1
            pg.start()
            acknowledged.append(mw.remember("atlas", f"kept {episode}").memory.id)
            assert active_faults() == []
        assert sorted(m.id for m in mw.list_memories(limit=500)) == sorted(acknowledged)
        assert mw.verify().ok
        mw.close()
    severities = _severities(tmp_path / "home" / "alerts.log", "unreachable")
    assert severities.count("critical") == severities.count("info") >= RESTART_EPISODES
    write_figures(
        "faults-postgresql-restart",
        {
            "episodes": RESTART_EPISODES,
            "refused_writes": refused,
            "acknowledged_writes": len(acknowledged),
            "lost": 0,
            "critical_alerts": severities.count("critical"),
            "resolved_notices": severities.count("info"),
        },
    )
