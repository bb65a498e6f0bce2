"""`memwarden alert emit | list | test` against a local receiver, on both engines."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from alert_support import Receiver, Step, closed_port
from cli_support import Cli
from memwarden import Settings

GENERIC = "/hook/cli-secret"
DISCORD = "/api/webhooks/77/cli-discord-secret"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


@pytest.fixture
def cli(settings: Settings, receiver: Receiver) -> Cli:
    runner = Cli(
        settings.home,
        settings.database_url,
        MEMWARDEN_ALERT_WEBHOOK=f"{receiver.url(GENERIC)},discord+{receiver.url(DISCORD)}",
        MEMWARDEN_ALERT_WEBHOOK_BACKOFF="0.02",
        MEMWARDEN_ALERT_WEBHOOK_ATTEMPTS="3",
    )
    runner.run("init")
    return runner


def test_emit_then_list(cli: Cli, receiver: Receiver) -> None:
    out = cli.run(
        "alert",
        "emit",
        "--severity",
        "critical",
        "--title",
        "Disk full",
        "--message",
        "line 1\nline 2",
        "--context",
        "disk=/dev/sda",
        "--context",
        "free=0",
    ).stdout
    assert out.startswith("critical alert raised")
    assert "generic  http://127.0.0.1:" in out and "/***: delivered (HTTP 200, 1 attempt" in out
    assert "discord  http://127.0.0.1:" in out and "delivered (HTTP 204" in out
    assert "secret" not in out
    body = receiver.on(GENERIC)[0].json()
    assert (
        body["context"] == {"disk": "/dev/sda", "free": "0"} and body["message"] == "line 1\nline 2"
    )
    again = cli.run("alert", "emit", "--severity", "critical", "--title", "Disk full").stdout
    assert "a repeat within the throttle window" in again and "x2" in again
    assert len(receiver.on(GENERIC)) == 1
    cli.run("alert", "emit", "--severity", "info", "--title", "Nightly run done")
    listed = cli.json("alert", "list")
    assert [(a["severity"], a["count"]) for a in listed] == [("info", 1), ("critical", 2)]
    assert {d["state"] for d in listed[1]["deliveries"]} == {"delivered"}
    only = cli.json("alert", "list", "--severity", "critical", "--since", "1h")
    assert [a["title"] for a in only] == ["Disk full"]
    assert cli.json("alert", "list", "--since", "2099-01-01T00:00:00") == []
    table = cli.run("alert", "list").stdout
    assert "Disk full" in table and "2 delivered" in table


def test_test_command_reports_each_delivery(cli: Cli, receiver: Receiver) -> None:
    receiver.plan(GENERIC, Step(503, {"Retry-After": "0"}))
    out = cli.run("alert", "test").stdout
    assert "test alert sent to 2 webhook(s)" in out
    assert "generic" in out and "delivered (HTTP 200, 2 attempts" in out
    assert receiver.on(DISCORD)[0].json()["embeds"][0]["title"] == "Test: memwarden test alert"
    down = f"generic+http://127.0.0.1:{closed_port()}/hook/x"
    failed = cli.run("alert", "test", code=1, env={"MEMWARDEN_ALERT_WEBHOOK": down})
    assert "dead (3 attempts" in failed.stdout and "cannot connect" in failed.stdout
    assert (
        failed.stderr.strip().splitlines()[-1]
        == "error: 1 of 1 webhooks did not confirm the test alert"
    )


def test_an_unknown_severity_is_raised_as_info_and_says_so(cli: Cli, receiver: Receiver) -> None:
    raised = cli.run(
        "alert", "emit", "--severity", "bogus", "--title", "Odd level", "--message", "m"
    )
    assert raised.stdout.startswith("info alert raised")
    assert (
        "warning: unknown severity 'bogus': the alert is raised as info and says so"
        in raised.stderr.splitlines()
    )
    stored = cli.json("alert", "list")[0]
    assert (stored["severity"], stored["title"]) == ("info", "Odd level")
    assert stored["message"] == "m\n(unknown severity 'bogus': sent as info)"
    assert stored["context"] == {"requested_severity": "bogus"}
    sent = receiver.on(GENERIC)[0].json()
    assert sent["severity"] == "info" and "unknown severity 'bogus'" in sent["message"]
    # Case and blanks are not unknown: exactly what emit_alert accepts.
    loud = cli.run("alert", "emit", "--severity", " Critical ", "--title", "Loud")
    assert loud.stdout.startswith("critical alert raised")
    assert "unknown severity" not in loud.stderr
    # A filter for a level that does not exist stays a usage error.
    assert "not one of info, warning, critical" in cli.error(
        "alert", "list", "--severity", "bogus", code=2
    )
    assert [a["title"] for a in cli.json("alert", "list", "--severity", "INFO")] == ["Odd level"]


def test_bad_input(cli: Cli, settings: Settings) -> None:
    assert "not key=value" in cli.error(
        "alert", "emit", "--title", "x", "--context", "novalue", code=2
    )
    assert "malformed --since time" in cli.error("alert", "list", "--since", "yesterday-ish")
    bad = Cli(
        settings.home,
        settings.database_url,
        MEMWARDEN_ALERT_WEBHOOK="ftp://example.org/hook/SECRET",
    )
    line = bad.error("alert", "list")
    assert line.startswith(
        "error: MEMWARDEN_ALERT_WEBHOOK: ftp://example.org/*** is not an http(s) URL"
    )
    assert "SECRET" not in line
    none = Cli(settings.home, settings.database_url, MEMWARDEN_ALERT_WEBHOOK="")
    assert none.error("alert", "test").startswith("error: no webhook configured")
