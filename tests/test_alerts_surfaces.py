"""The seed's alert surfaces: the last alert of each severity in project state (visible through
the state API), the generic webhook's ``timestamp``, and an invalid severity said in the log.
On both engines."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import structlog
from fastapi.testclient import TestClient

from alert_support import Receiver, fast_policy, with_alerts
from memwarden import Memwarden, Settings
from memwarden.api import create_app
from memwarden.core import alert_state
from memwarden.observability.alerts import Alerts

LOOPBACK = "http://127.0.0.1"
GENERIC = "/hook/surfaces-secret"


@pytest.fixture
def mw(settings: Settings) -> Iterator[Memwarden]:
    """The conftest ``mw`` with the alert-state mirror on (the product's default; the suite
    turns it off elsewhere)."""
    mirrored = settings.model_copy(update={"alert_state_project": "memwarden"})
    instance = Memwarden.init(mirrored)
    instance.add_project("atlas")
    try:
        yield instance
    finally:
        instance.close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


def test_last_alert_of_each_severity_is_mirrored_into_project_state(mw: Memwarden) -> None:
    mw.alerts.emit("info", "first info", "m1")
    mw.alerts.emit("info", "second info", "m2")
    mw.alerts.emit("warning", "a warning", "w")
    with structlog.testing.capture_logs() as logs:
        mw.alerts.emit("bogus", "odd level", "o")
    mw.alerts.emit("critical", "a critical", "c" * 5000)
    assert mw.alerts.flush(10)
    # The invalid severity fell back to info, and the log says so.
    (said,) = [e for e in logs if e["event"] == "alert_severity_unknown"]
    assert (said["requested"], said["sent_as"], said["log_level"]) == ("bogus", "info", "warning")
    (logged,) = [e for e in logs if e["event"] == "alert"]
    assert logged["severity"] == "info" and logged["context"] == {"requested_severity": "bogus"}
    state = {e.key: e for e in mw.list_state("memwarden", "alert")}
    assert sorted(state) == ["last_critical", "last_info", "last_warning"]
    assert json.loads(state["last_info"].value)["title"] == "odd level"
    assert json.loads(state["last_warning"].value)["title"] == "a warning"
    critical = json.loads(state["last_critical"].value)
    assert critical["severity"] == "critical" and len(critical["message"]) == 1000
    assert state["last_info"].source.startswith("alert:")
    # Each mirror write is an audited state mutation by the actor "alerts".
    mirrored = [r for r in mw.recent() if r.entity_type == "project_state"]
    assert mirrored and all(r.actor == alert_state.ACTOR for r in mirrored)
    # And the state API shows them.
    with TestClient(create_app(memwarden=mw), base_url=LOOPBACK) as client:
        got = client.get("/projects/memwarden/state", params={"category": "alert"})
        assert got.status_code == 200, got.text
        by_key = {e["key"]: json.loads(e["value"]) for e in got.json()}
    assert by_key["last_warning"]["title"] == "a warning"
    assert by_key["last_info"]["title"] == "odd level"


def test_the_mirror_is_fail_open(mw: Memwarden) -> None:
    def broken(_alerts: object) -> None:
        raise RuntimeError("state unwritable")

    mw.alerts.mirror = broken
    with structlog.testing.capture_logs() as logs:
        mw.alerts.emit("warning", "still stored", "the mirror failed")
        assert mw.alerts.flush(10)
    assert mw.alerts.history()[0].title == "still stored"
    failed = [e for e in logs if e["event"] == "alert_sink_failed"]
    assert failed and failed[0]["sink"] == "state" and "state unwritable" in failed[0]["error"]


def test_generic_webhook_carries_timestamp_and_delivery_id(
    mw: Memwarden, receiver: Receiver
) -> None:
    settings = with_alerts(mw.settings, alert_webhook=receiver.url(GENERIC))
    alerts = Alerts(settings, mw.store, policy=fast_policy(settings))
    try:
        alerts.emit("warning", "Queue long", "201 candidates")
        assert alerts.drain(10)
    finally:
        alerts.close(2)
    (got,) = receiver.on(GENERIC)
    body = got.json()
    assert body["timestamp"] == body["time"] and body["timestamp"].endswith("+00:00")
    assert body["delivery_uid"] == got.headers["x-memwarden-delivery-id"]
    assert len(body["delivery_uid"]) == 32
