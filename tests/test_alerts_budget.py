"""Delivery on a time budget: the backoff policy, dead letters, `alert dead` and `alert
redeliver`, and the same delivery id on every attempt. On both engines where stored."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from alert_support import Receiver, Step
from cli_support import Cli
from memwarden import Settings
from memwarden.api import create_app
from memwarden.observability.backoff import Backoff, verdict

BROKEN = "/hook/broken-secret"
WITNESS = "/hook/witness-secret"


def test_backoff_grows_with_jitter_up_to_its_cap() -> None:
    policy = Backoff(base=1.0, cap=300.0, budget=3600.0)
    rng = random.Random(7)
    for failures, step in [(1, 1.0), (2, 2.0), (3, 4.0), (9, 256.0), (10, 300.0), (500, 300.0)]:
        waits = [policy.delay(failures, rng) for _ in range(200)]
        assert all(step / 2 <= w <= step for w in waits)
        assert max(waits) - min(waits) > step / 4  # jittered, not one fixed value


def test_next_attempt_honours_retry_after_and_never_passes_the_budget() -> None:
    policy = Backoff(base=1.0, cap=300.0, budget=600.0, max_retry_after=300.0)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    assert policy.next_attempt(start, start, 1, retry_after=42.0) == start + timedelta(seconds=42)
    assert policy.next_attempt(start, start, 1, retry_after=9999.0) == start + timedelta(
        seconds=300
    )
    late = start + timedelta(seconds=590)
    assert policy.next_attempt(late, start, 20) == start + timedelta(seconds=600)  # one last try
    assert policy.next_attempt(start + timedelta(seconds=600), start, 1) is None  # spent


def test_what_each_answer_means() -> None:
    assert [verdict(c) for c in (200, 204, 429, 503, 500, 502, 408, None)] == [
        "ok",
        "ok",
        "throttled",
        "throttled",
        "retry",
        "retry",
        "retry",
        "retry",
    ]
    assert {verdict(c) for c in (400, 401, 403, 404, 410)} == {"permanent"}


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


def test_budget_spent_is_a_dead_letter_listed_and_redelivered(
    settings: Settings, receiver: Receiver
) -> None:
    receiver.plan(BROKEN, *[Step(500, body=b"down")] * 1000)
    cli = Cli(
        settings.home,
        settings.database_url,
        MEMWARDEN_ALERT_WEBHOOK=f"{receiver.url(BROKEN)},{receiver.url(WITNESS)}",
        MEMWARDEN_ALERT_WEBHOOK_TIMEOUT="2",
        MEMWARDEN_ALERT_WEBHOOK_BACKOFF="0.05",
        MEMWARDEN_ALERT_WEBHOOK_BACKOFF_MAX="0.2",
        MEMWARDEN_ALERT_WEBHOOK_BUDGET="1.5",
    )
    cli.run("init")
    assert cli.run("alert", "dead").stdout.strip() == "no dead letters"
    cli.run("alert", "emit", "--severity", "warning", "--title", "Doomed", "--wait", "8")
    tries = receiver.on(BROKEN)
    assert len(tries) >= 3  # retried within the budget...
    uids = {r.headers["x-memwarden-delivery-id"] for r in tries}
    assert len(uids) == 1  # ...always as the same delivery
    (dead,) = cli.json("alert", "dead")
    assert (dead["state"], dead["title"], dead["last_status"]) == ("dead", "Doomed", 500)
    assert dead["uid"] == next(iter(uids)) and "secret" not in str(dead)
    assert "Doomed" in cli.run("alert", "dead").stdout
    # The other webhook heard that this one gave up, naming it without its secret.
    told = [r.json() for r in receiver.on(WITNESS)]
    gave_up = [b for b in told if b["title"].startswith("Alert delivery gave up")]
    assert gave_up and gave_up[0]["severity"] == "critical"
    assert gave_up[0]["title"] == f"Alert delivery gave up: http://127.0.0.1:{receiver.port}/***"
    assert "secret" not in str(told)
    # doctor says so (a fail: an operator must act).
    doctor = json.loads(cli.run("doctor", "--json", code=1).stdout)
    checks = {c["name"]: c for c in doctor["checks"]}
    assert checks["alert_dead_letters"]["status"] == "fail"
    assert checks["alert_targets"]["status"] == "ok"
    # /health too: degraded, with the dead letters among its faults.
    with TestClient(create_app(settings), base_url="http://127.0.0.1") as client:
        health = client.get("/health").json()
    assert health["status"] == "degraded"
    (fault,) = [f for f in health["faults"] if f["key"] == "alerts.dead_letters"]
    assert fault["occurrences"] == 1 and "redeliver" in fault["message"]
    # The receiver is fixed: redeliver sends it again, with a fresh budget, under the same id.
    receiver.plan(BROKEN)
    before = len(receiver.on(BROKEN))
    out = cli.run("alert", "redeliver", "--all", "--wait", "10").stdout
    assert out.startswith("1 dead letter(s) queued again: 1 delivered")
    again = receiver.on(BROKEN)[before:]
    assert [r.headers["x-memwarden-delivery-id"] for r in again] == [dead["uid"]]
    assert cli.run("alert", "dead").stdout.strip() == "no dead letters"
    with TestClient(create_app(settings), base_url="http://127.0.0.1") as client:
        assert client.get("/health").json()["status"] == "ok"
    assert "not dead letters" in cli.run("alert", "redeliver", "999999", code=1).stderr
    assert cli.run("alert", "redeliver", code=2).exit_code == 2  # ids or --all
