"""Fault episodes (one alert per episode, a resolved notice, /health degraded) and `doctor`."""

from __future__ import annotations

import json
from pathlib import Path

from fastapi.testclient import TestClient

from cli_support import Cli
from memwarden import Memwarden, Settings
from memwarden.api import create_app
from memwarden.observability.faults import faults

LOOPBACK = "http://127.0.0.1"


def _alert_lines(home: Path) -> list[dict[str, object]]:
    path = home / "alerts.log"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]


def test_a_fault_alerts_once_per_episode_and_resolves(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home")
    with Memwarden.init(settings) as mw:
        assert faults.raise_fault("disk", "Disk full", "no space left on /data")
        assert not faults.raise_fault("disk", "Disk full", "still no space")
        assert [f.occurrences for f in faults.active()] == [2]
        assert faults.clear_fault("disk")
        assert not faults.clear_fault("disk")
        assert faults.raise_fault("disk", "Disk full", "again")  # a new episode alerts again
        mw.alerts.drain(5.0)
    lines = _alert_lines(settings.home)
    raised = [
        line for line in lines if line.get("event") == "alert" and line["title"] == "Disk full"
    ]
    resolved = [line for line in lines if line.get("event") == "alert_resolved"]
    assert [line["severity"] for line in raised] == ["critical", "critical"]
    assert len(resolved) == 1


def test_health_is_degraded_while_a_fault_is_active(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home")
    Memwarden.init(settings).close()
    with TestClient(create_app(settings), base_url=LOOPBACK) as client:
        assert client.get("/health").json()["status"] == "ok"
        faults.raise_fault("witness", "Witness unwritable", "read-only file system")
        body = client.get("/health").json()
        assert body["status"] == "degraded"
        assert [f["key"] for f in body["faults"]] == ["witness"]
        faults.clear_fault("witness")
        assert client.get("/health").json()["status"] == "ok"


def test_doctor_passes_on_a_fresh_store_and_fails_without_one(tmp_path: Path) -> None:
    cli = Cli(tmp_path / "home")
    missing = cli.run("doctor", code=1)
    assert "FAIL" in missing.stdout and "database" in missing.stdout
    cli.run("init")
    ok = cli.run("doctor", "--json")
    report = json.loads(ok.stdout)
    assert report["ok"] is True
    assert {"name": "database", "status": "ok"}.items() <= report["checks"][0].items()
