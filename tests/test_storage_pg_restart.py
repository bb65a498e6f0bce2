"""PostgreSQL down, and restarted mid-run, on a throwaway cluster of the test's own: clear
errors (503 with Retry-After, one CLI line), one alert per episode with its resolved notice,
nothing half-written, and a running server that reconnects without being restarted."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from memwarden import Memwarden, Settings
from memwarden.api import create_app
from memwarden.db.faults import StorageUnavailableError
from memwarden.observability.alerts.default import reset_fallback
from memwarden.observability.faults import active_faults, faults
from pg_cluster_support import available, cluster

LOOPBACK = "http://127.0.0.1"


@pytest.fixture(autouse=True)
def _clean_register(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("MEMWARDEN_ALERT_LOG", str(tmp_path / "home" / "alerts.log"))
    reset_fallback()
    faults.reset()
    yield
    faults.reset()
    reset_fallback()


def test_postgresql_down_and_restarted_under_a_running_server(tmp_path: Path) -> None:
    reason = available()
    if reason is not None:
        pytest.skip(reason)
    with cluster() as pg:
        settings = Settings(home=tmp_path / "home", database_url=pg.url)
        mw = Memwarden.init(settings)
        mw.add_project("atlas")
        acknowledged = [mw.remember("atlas", "Before the outage", status="active").memory.id]
        app = create_app(settings, memwarden=mw)
        with TestClient(app, base_url=LOOPBACK) as client:
            assert client.get("/health").json()["status"] == "ok"
            pg.stop()
            refused = client.post("/memory", json={"project": "atlas", "content": "During"})
            assert refused.status_code == 503 and refused.headers["Retry-After"] == "5"
            assert "database unreachable" in refused.json()["error"]["message"]
            with pytest.raises(StorageUnavailableError, match="database unreachable"):
                mw.remember("atlas", "During, through the library")
            probe = client.get("/health")
            assert probe.status_code == 503 and probe.json()["status"] == "unavailable"
            assert [f["key"] for f in probe.json()["faults"]] == ["storage:unreachable"]
            pg.start()
            created = client.post("/memory", json={"project": "atlas", "content": "After"})
            assert created.status_code == 201, created.text
            acknowledged.append(created.json()["memory"]["id"])
            assert active_faults() == []
            # Restarted between two requests: the pool's dead connections are replaced.
            pg.restart()
            again = client.post("/memory", json={"project": "atlas", "content": "After restart"})
            assert again.status_code == 201, again.text
            acknowledged.append(again.json()["memory"]["id"])
            assert client.get("/health").json()["status"] == "ok"
        assert sorted(m.id for m in mw.list_memories()) == sorted(acknowledged)
        assert mw.verify().ok
        mw.close()
    lines = [
        json.loads(line)
        for line in (tmp_path / "home" / "alerts.log").read_text().splitlines()
        if "storage:unreachable" in line
    ]
    # One alert per episode and its resolved notice: the outage, and (if a background writer
    # met it) the few hundred milliseconds of the restart; never a repeat within one.
    severities = [line["severity"] for line in lines]
    assert severities[:2] == ["critical", "info"]
    assert severities in (["critical", "info"], ["critical", "info", "critical", "info"])
