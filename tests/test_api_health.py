"""/health when the database is not there (503, then recovery) and /metrics: requests by
route template and status, mutations by action, ledger write failures, per-app registries."""

from __future__ import annotations

import re
from pathlib import Path

import sqlalchemy as sa
from fastapi.testclient import TestClient

from api_support import assert_error, client_for
from memwarden import Memwarden, Settings
from memwarden.api import create_app
from memwarden.api.metrics import Metrics

LOOPBACK = "http://127.0.0.1"  # an open server answers loopback host names only


def test_health_503_on_a_file_that_is_not_a_database(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "memwarden.db").write_bytes(b"this is not a database" * 100)
    with TestClient(create_app(Settings(home=home))) as client:
        health = client.get("/health")
        assert health.status_code == 503
        body = health.json()
        assert body["status"] == "unavailable" and body["database"] == "unreachable"
        assert (
            body["error"]["code"] == "storage"
            and "not a SQLite database" in body["error"]["message"]
        )
        assert_error(client.get("/memory"), 503, "storage")


def test_health_503_when_postgresql_is_unreachable(tmp_path: Path) -> None:
    url = "postgresql+psycopg://postgres@127.0.0.1:1/test?connect_timeout=2"
    with TestClient(create_app(Settings(home=tmp_path / "home", database_url=url))) as client:
        health = client.get("/health")
        assert health.status_code == 503 and health.json()["database"] == "unreachable"
        assert_error(client.post("/recall", json={"query": "x"}), 503)


def test_health_recovers_once_the_database_is_ready(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home")
    with TestClient(create_app(settings), base_url=LOOPBACK) as client:
        before = client.get("/health")
        assert before.status_code == 503 and "memwarden init" in before.json()["error"]["message"]
        Memwarden.init(settings).close()
        after = client.get("/health")
        assert after.status_code == 200 and after.json()["schema_current"] is True
        assert client.get("/projects").json() == []


def metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus text (0 when absent)."""
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', line.split(" ")[0]))
        if found == labels:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_metrics(mw: Memwarden) -> None:
    with client_for(mw) as client:
        made = client.post("/memory", json={"project": "atlas", "content": "Counted"}).json()
        client.post(f"/memory/{made['memory']['id']}/promote")
        client.post(f"/memory/{made['memory']['id']}/promote")  # 409
        client.get("/memory/12345")  # 404
        client.get("/no/such/route")
        text = client.get("/metrics").text
        assert (
            metric(
                text, "memwarden_http_requests_total", method="POST", route="/memory", status="201"
            )
            == 1
        )
        promote = {"method": "POST", "route": "/memory/{memory_id}/promote"}
        assert metric(text, "memwarden_http_requests_total", **promote, status="200") == 1
        assert metric(text, "memwarden_http_requests_total", **promote, status="409") == 1
        assert (
            metric(
                text,
                "memwarden_http_requests_total",
                method="GET",
                route="/memory/{memory_id}",
                status="404",
            )
            == 1
        )
        assert (
            metric(
                text,
                "memwarden_http_requests_total",
                method="GET",
                route="<unmatched>",
                status="404",
            )
            == 1
        )
        assert (
            metric(
                text,
                "memwarden_http_request_duration_seconds_count",
                method="POST",
                route="/memory",
                status="201",
            )
            == 1
        )
        assert metric(text, "memwarden_mutations_total", entity="memory", action="created") == 1
        assert metric(text, "memwarden_mutations_total", entity="memory", action="promoted") == 1
        assert metric(text, "memwarden_ledger_write_failures_total") == 0
        # A real ledger failure: its payload table is gone. The mutation still succeeds (fail-open).
        with mw.store.engine.begin() as conn:
            conn.execute(sa.text("ALTER TABLE ledger_payloads RENAME TO ledger_payloads_away"))
        try:
            survived = client.post("/memory", json={"project": "atlas", "content": "Unledgered"})
            assert survived.status_code == 201
        finally:
            with mw.store.engine.begin() as conn:
                conn.execute(sa.text("ALTER TABLE ledger_payloads_away RENAME TO ledger_payloads"))
        text = client.get("/metrics").text
        assert metric(text, "memwarden_ledger_write_failures_total") == 1
        assert metric(text, "memwarden_mutations_total", entity="memory", action="created") == 2


def test_each_app_has_its_own_registry(mw: Memwarden) -> None:
    extra: list[Metrics] = []
    made: list[object] = []

    def extension(_app: object, metrics: Metrics) -> None:
        counter = metrics.counter("memwarden_widgets_total", "Widgets made", ("kind",))
        counter.labels("round").inc(3)
        extra.append(metrics)
        made.append(counter)

    with (
        client_for(mw, extensions=[extension]) as first,
        client_for(mw, extensions=[extension]) as second,
    ):
        first.get("/projects")
        assert metric(first.get("/metrics").text, "memwarden_widgets_total", kind="round") == 3
        second_text = second.get("/metrics").text
        assert (
            metric(
                second_text,
                "memwarden_http_requests_total",
                method="GET",
                route="/projects",
                status="200",
            )
            == 0
        )
    assert extra[0].counter("memwarden_widgets_total", "Widgets made", ("kind",)) is made[0]
    assert extra[0].registry is not extra[1].registry


def test_metrics_export_the_operation_log_counters(settings: Settings) -> None:
    logged = settings.model_copy(update={"oplog_actions": "*"})
    with Memwarden.init(logged) as mw, client_for(mw) as client:
        client.post("/projects", json={"name": "atlas"})
        client.get("/projects")
        assert mw.oplog.flush(10)
        text = client.get("/metrics").text
    assert metric(text, "memwarden_oplog_written_total") >= 2
    assert metric(text, "memwarden_oplog_dropped_total") == 0
    assert metric(text, "memwarden_oplog_queued") == 0


def test_an_app_restarted_in_one_process_keeps_serving_metrics(mw: Memwarden) -> None:
    client = TestClient(create_app(memwarden=mw), base_url=LOOPBACK, raise_server_exceptions=False)
    for _ in range(2):  # the second lifespan re-opens the backend and re-watches it
        with client:
            assert client.get("/projects").status_code == 200
            assert "memwarden_oplog_queued" in client.get("/metrics").text


def test_health_on_a_reachable_database_whose_schema_is_damaged(mw: Memwarden) -> None:
    """The ledger table renamed under a running server: /health said the database was
    "unreachable" (it answered), with SQLAlchemy's documentation code in the message. Now it
    is "reachable", unavailable, and the message is the fault's own."""
    with mw.store.write() as unit:
        unit.conn.exec_driver_sql("ALTER TABLE ledger_payloads RENAME TO ledger_payloads_gone")
        unit.conn.exec_driver_sql("ALTER TABLE ledger RENAME TO ledger_gone")
    try:
        with TestClient(create_app(mw.settings, memwarden=mw), base_url=LOOPBACK) as client:
            health = client.get("/health")
    finally:
        with mw.store.write() as unit:
            unit.conn.exec_driver_sql("ALTER TABLE ledger_gone RENAME TO ledger")
            unit.conn.exec_driver_sql("ALTER TABLE ledger_payloads_gone RENAME TO ledger_payloads")
    assert health.status_code == 503
    body = health.json()
    assert (body["status"], body["database"]) == ("unavailable", "reachable")
    assert body["error"]["code"] == "storage_unavailable"
    assert body["error"]["message"].startswith("database schema damaged")
    assert "sqlalche.me" not in body["error"]["message"]
