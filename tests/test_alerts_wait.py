"""`memwarden alert emit --wait`: 0 returns at once, N waits at most N seconds, and the output
says truthfully which sinks delivered and which are still pending. Generous bounds: the
assertions are about seconds, never fractions of one. On both engines."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

from alert_support import Receiver, Step
from cli_support import Cli
from memwarden import Settings

HANGS = "/hook/hangs-secret"
ANSWERS = "/hook/answers-secret"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()  # releases the hanging handlers


def cli_for(settings: Settings, url: str) -> Cli:
    runner = Cli(
        settings.home,
        settings.database_url,
        MEMWARDEN_ALERT_WEBHOOK=url,
        MEMWARDEN_ALERT_WEBHOOK_TIMEOUT="20",
        MEMWARDEN_ALERT_WEBHOOK_BACKOFF="0.05",
    )
    runner.run("init")
    return runner


def timed(cli: Cli, *args: str) -> tuple[float, str, str]:
    started = time.monotonic()
    result = cli.run(*args)
    return time.monotonic() - started, result.stdout, result.stderr


def test_wait_zero_returns_at_once_and_says_pending(settings: Settings, receiver: Receiver) -> None:
    receiver.plan(HANGS, *[Step(hang=30.0)] * 3)
    cli = cli_for(settings, receiver.url(HANGS))
    seconds, out, err = timed(cli, "alert", "emit", "--title", "Hung", "--wait", "0")
    assert seconds < 4.0  # was ~11 s: the command no longer drains behind --wait's back
    assert out.startswith("info alert raised")
    assert "log: written; alerts file: written" in out
    assert "generic  http://127.0.0.1:" in out and ": pending (" in out
    assert "delivered" not in out
    assert "1 of 1 webhook deliveries still pending after 0 s" in err
    # The truth: the outbox still holds it for the next process.
    (listed,) = cli.json("alert", "list")
    assert [d["state"] for d in listed["deliveries"]] == ["pending"]
    checks = {c["name"]: c for c in cli.json("doctor")["checks"]}
    assert checks["alert_pending"]["pending"] == 1
    assert checks["alert_pending"]["status"] == "ok"  # pending for seconds, not hours
    assert checks["alert_dead_letters"]["status"] == "ok"


def test_wait_n_waits_at_most_n_seconds(settings: Settings, receiver: Receiver) -> None:
    receiver.plan(HANGS, *[Step(hang=30.0)] * 3)
    cli = cli_for(settings, receiver.url(HANGS))
    seconds, out, err = timed(cli, "alert", "emit", "--title", "Hung", "--wait", "2")
    assert 2.0 <= seconds < 6.0
    assert ": pending (" in out and "still pending after 2 s" in err


def test_wait_reports_a_delivery_that_happened(settings: Settings, receiver: Receiver) -> None:
    cli = cli_for(settings, receiver.url(ANSWERS))
    seconds, out, err = timed(cli, "alert", "emit", "--title", "Fine", "--wait", "10")
    assert seconds < 8.0
    assert ": delivered (HTTP 200, 1 attempt" in out and "pending" not in out + err
    data = json.loads(cli.run("alert", "emit", "--title", "Fine 2", "--json").stdout)
    assert [d["state"] for d in data["deliveries"]] == ["delivered"] and data["pending"] == 0
    assert data["sinks"]["log"] == "written" and data["sinks"]["database"] == "stored"
