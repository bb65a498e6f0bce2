"""Webhook delivery through the outbox, against a real HTTP receiver on loopback, on both engines."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
import structlog
from pydantic import SecretStr

from alert_support import Receiver, Step, closed_port, fast_policy, verify_signature, with_alerts
from ledger_support import attacker
from memwarden import Memwarden, Settings
from memwarden.db import schema
from memwarden.observability.alerts import AlertConfigError, Alerts, DeliveryRecord
from memwarden.observability.alerts.history import AttemptRecord

DISCORD = "/api/webhooks/4242/T0KEN-discord-secret"
SLACK = "/services/T000/B000/slack-secret"
GENERIC = "/hook/generic-secret"

MakeAlerts = Callable[..., Alerts]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


@pytest.fixture
def make_alerts(mw: Memwarden) -> Iterator[MakeAlerts]:
    made: list[Alerts] = []

    def make(webhooks: list[str], *, start: bool = True, **changes: object) -> Alerts:
        settings = with_alerts(mw.settings, alert_webhook=",".join(webhooks), **changes)
        alerts = Alerts(settings, mw.store, policy=fast_policy(settings), start=start)
        made.append(alerts)
        return alerts

    yield make
    for alerts in made:
        alerts.close(timeout=2)


def outbox(alerts: Alerts) -> tuple[list[DeliveryRecord], list[AttemptRecord]]:
    ids = [a.id for a in alerts.history(limit=1000)]
    deliveries = alerts.deliveries(ids)
    return deliveries, alerts.attempts([d.id for d in deliveries])


def test_each_kind_gets_its_own_format(receiver: Receiver, make_alerts: MakeAlerts) -> None:
    alerts = make_alerts(
        [f"discord+{receiver.url(DISCORD)}", f"slack+{receiver.url(SLACK)}", receiver.url(GENERIC)],
        alert_webhook_secret=SecretStr("s3cret"),
    )
    alerts.emit(
        "critical",
        "Ledger write failed",
        "line 1\nline 2 <!channel>",
        {"error_type": "OperationalError", "n": 3},
    )
    assert alerts.drain(10)
    discord, slack, generic = (receiver.wait_for(p, 1)[0] for p in (DISCORD, SLACK, GENERIC))
    for got in (discord, slack, generic):
        assert got.violations == []
    embed = discord.json()["embeds"][0]
    assert embed["title"] == "Ledger write failed" and embed["color"] == 0xE74C3C
    assert {f["name"] for f in embed["fields"]} == {"error_type", "n"}
    assert "&lt;!channel&gt;" in str(slack.json())
    body = generic.json()
    assert (body["severity"], body["status"], body["context"]["n"]) == ("critical", "firing", 3)
    assert verify_signature(generic, "s3cret") and not verify_signature(generic, "wrong")
    deliveries, attempts = outbox(alerts)
    assert sorted(d.target_kind for d in deliveries) == ["discord", "generic", "slack"]
    assert all(d.state == "delivered" and d.attempts == 1 and d.delivered_at for d in deliveries)
    assert sorted(a.status_code or 0 for a in attempts) == [200, 200, 204]
    assert all(a.latency_ms > 0 and a.outcome == "delivered" and a.error is None for a in attempts)
    assert all("secret" not in d.target for d in deliveries)


def test_the_http_clients_own_log_never_shows_a_webhook_url(
    receiver: Receiver, make_alerts: MakeAlerts, caplog: pytest.LogCaptureFixture
) -> None:
    alerts = make_alerts([f"discord+{receiver.url(DISCORD)}", receiver.url(GENERIC)])
    with caplog.at_level(logging.INFO, logger="httpx"):
        alerts.emit("warning", "Disk almost full", "93% used")
        assert alerts.drain(10)
    requests = [r.getMessage() for r in caplog.records if r.name == "httpx"]
    assert len(requests) == 2  # httpx did log both requests...
    assert all("secret" not in line and "4242" not in line for line in requests)  # ...redacted


def test_transient_failures_are_retried_honouring_retry_after(
    receiver: Receiver, make_alerts: MakeAlerts
) -> None:
    receiver.plan(GENERIC, Step(429, {"Retry-After": "1"}, b"slow down"))
    receiver.plan(
        DISCORD,
        Step(
            429,
            {"Content-Type": "application/json", "Retry-After": "9"},
            b'{"retry_after": 0.4, "global": false}',
        ),
    )
    receiver.plan(SLACK, Step(500, body=b"boom"), Step(502))
    alerts = make_alerts(
        [receiver.url(GENERIC), f"discord+{receiver.url(DISCORD)}", f"slack+{receiver.url(SLACK)}"]
    )
    alerts.emit("warning", "Queue long", "201 candidates wait")
    assert alerts.drain(10)
    deliveries, attempts = outbox(alerts)
    by_kind = {d.target_kind: d for d in deliveries}
    tries = {
        kind: [(a.attempt, a.status_code, a.outcome) for a in attempts if a.delivery_id == d.id]
        for kind, d in by_kind.items()
    }
    assert tries == {
        "generic": [(1, 429, "rate_limited"), (2, 200, "delivered")],
        "discord": [(1, 429, "rate_limited"), (2, 204, "delivered")],
        "slack": [(1, 500, "http_error"), (2, 502, "http_error"), (3, 200, "delivered")],
    }
    assert all(d.state == "delivered" and d.last_error is None for d in deliveries)
    assert next(a for a in attempts if a.status_code == 500).error == "HTTP 500: boom"
    generic, discord = receiver.on(GENERIC), receiver.on(DISCORD)
    assert generic[1].at - generic[0].at >= 0.95  # the header's second, not the 0.02 s backoff
    assert (
        0.35 <= discord[1].at - discord[0].at < 5
    )  # Discord's JSON retry_after wins over its header
    slack = receiver.on(SLACK)
    assert slack[2].at - slack[0].at < 1  # plain backoff: short in this test


def test_hanging_receiver_times_out_and_the_caller_never_waits(
    receiver: Receiver, make_alerts: MakeAlerts
) -> None:
    receiver.plan(GENERIC, Step(hang=3.0))
    alerts = make_alerts([receiver.url(GENERIC)], alert_webhook_timeout=0.4)
    alerts.emit("critical", "first", "hangs")
    receiver.wait_for(GENERIC, 1)
    slowest = 0.0
    for i in range(50):  # while the worker is stuck on the hanging receiver
        started = time.perf_counter()
        alerts.emit("warning", f"during hang {i}", "m")
        slowest = max(slowest, time.perf_counter() - started)
    assert slowest < 0.3  # well under the 0.4 s webhook timeout: the caller never waits for it
    assert alerts.drain(15)
    (first, *rest), attempts = outbox(alerts)
    assert len(rest) == 50 and all(d.state == "delivered" for d in [first, *rest])
    hang = [a for a in attempts if a.delivery_id == first.id]
    assert [a.outcome for a in hang] == ["timeout", "delivered"]
    assert hang[0].status_code is None and "no answer within 0.4 s" in (hang[0].error or "")
    assert 350 <= hang[0].latency_ms < 2000


def test_give_ups_are_dead_letters_and_are_announced_through_the_other_sinks(
    receiver: Receiver, make_alerts: MakeAlerts
) -> None:
    refused = f"http://127.0.0.1:{closed_port()}{GENERIC}"
    receiver.plan(SLACK, *[Step(503, {"Retry-After": "0"}, b"maintenance")] * 6)
    receiver.plan(
        DISCORD, Step(404, {"Content-Type": "application/json"}, b'{"message": "Unknown Webhook"}')
    )
    alerts = make_alerts(
        [refused, f"slack+{receiver.url(SLACK)}", f"discord+{receiver.url(DISCORD)}"]
    )
    with structlog.testing.capture_logs() as logs:
        alerts.emit("critical", "one", "m")
        alerts.emit("warning", "two", "m")
        assert alerts.drain(15, everything=True)
    deliveries, attempts = outbox(alerts)
    by_title = {a.title: a for a in alerts.history(limit=100)}
    one, two = by_title["one"].id, by_title["two"].id
    states = {
        (d.alert_id, d.target_kind): (d.state, d.attempts, d.failures, d.last_status)
        for d in deliveries
        if d.alert_id in (one, two)
    }
    assert states == {
        # Refused three times (the FAST cap of counted failures): a dead letter.
        (one, "generic"): ("dead", 3, 3, None),
        (two, "generic"): ("dead", 3, 3, None),
        # Six 503s never count as failures: the seventh attempt delivers.
        (one, "slack"): ("delivered", 7, 0, 200),
        (two, "slack"): ("delivered", 1, 0, 200),
        (one, "discord"): ("failed", 1, 1, 404),  # a 404 is never retried
        (two, "discord"): ("delivered", 1, 0, 204),
    }
    refused_errors = [a.error or "" for a in attempts if a.outcome == "connect_error"]
    assert refused_errors and all("cannot connect" in e for e in refused_errors)
    # The misconfigured Discord webhook is named (host and port, no secret) through the others.
    (misconfigured,) = [a for a in by_title.values() if a.title.startswith("Alert webhook mis")]
    assert misconfigured.severity == "critical"
    assert (
        misconfigured.title == f"Alert webhook misconfigured: http://127.0.0.1:{receiver.port}/***"
    )
    assert "HTTP 404" in misconfigured.message and "redeliver" in misconfigured.message
    sent_to = {d.target_kind for d in deliveries if d.alert_id == misconfigured.id}
    assert sent_to == {"generic", "slack"}  # never to the webhook that failed
    assert any(
        r.json()["text"].endswith(
            f"Alert webhook misconfigured: http://127.0.0.1:{receiver.port}/***"
        )
        for r in receiver.on(SLACK)
    )
    # The generic webhook's dead letters: one critical alert (repeats folded), not to itself.
    (gave_up,) = [a for a in by_title.values() if a.title.startswith("Alert delivery gave up")]
    assert gave_up.severity == "critical" and gave_up.count >= 2
    assert {d.target_kind for d in deliveries if d.alert_id == gave_up.id} == {"slack", "discord"}
    dead = alerts.dead_letters()
    assert {(d.alert_id, d.target_kind, d.state) for d in dead} >= {
        (one, "generic", "dead"),
        (two, "generic", "dead"),
        (one, "discord", "failed"),
    }
    text = repr(logs) + repr(attempts) + repr(deliveries) + repr(list(by_title.values()))
    assert "secret" not in text  # no webhook URL's secret part reaches a log or a row
    assert sum(e["event"] == "alert_delivery_failed" for e in logs) == len(dead)


def test_restart_delivers_what_the_last_process_left(
    receiver: Receiver, make_alerts: MakeAlerts
) -> None:
    first = make_alerts([receiver.url(GENERIC)], start=False)  # a process that dies before sending
    for i in range(3):
        first.emit("critical", f"left behind {i}", "m")
    assert first.flush(5)
    first.close()
    assert first.pending() == 3 and receiver.on(GENERIC) == []
    second = make_alerts([receiver.url(GENERIC)])
    assert second.drain(10, everything=True)
    got = receiver.wait_for(GENERIC, 3)
    assert sorted(r.json()["title"] for r in got) == [
        "left behind 0",
        "left behind 1",
        "left behind 2",
    ]
    assert second.pending() == 0


def test_repeats_are_folded_and_resolution_is_sent(
    receiver: Receiver, make_alerts: MakeAlerts
) -> None:
    alerts = make_alerts([receiver.url(GENERIC)], alert_throttle_seconds=0.5)
    fp = ""
    for _ in range(4):
        fp = alerts.emit("warning", "Candidate queue above 200", "m", {"queue": 250})
    assert alerts.drain(5)
    assert len(receiver.on(GENERIC)) == 1
    (head,) = alerts.history()
    assert (head.count, head.status) == (4, "firing")
    time.sleep(0.55)  # the window passes: the next repeat is delivered and reports the folded ones
    alerts.emit("warning", "Candidate queue above 200", "m", {"queue": 260})
    alerts.emit("warning", "Candidate queue above 200", "m", {"queue": 270})
    assert alerts.drain(5)
    second = receiver.wait_for(GENERIC, 2)[1].json()
    assert second["folded"] == 3 and second["status"] == "firing"
    alerts.resolve(fp)
    assert alerts.drain(5)
    resolved = receiver.wait_for(GENERIC, 3)[2].json()
    assert (resolved["status"], resolved["kind"], resolved["folded"]) == ("resolved", "resolved", 1)
    assert all(a.status == "resolved" and a.resolved_at for a in alerts.history())
    alerts.resolve(fp)  # nothing firing any more: nothing sent
    alerts.emit("warning", "Candidate queue above 200", "back again")  # a new problem: sent at once
    assert alerts.drain(5)
    assert len(receiver.wait_for(GENERIC, 4)) == 4
    assert receiver.on(GENERIC)[3].json()["folded"] == 0


def test_a_head_dated_in_the_future_does_not_silence_its_repeats(
    mw: Memwarden, receiver: Receiver, make_alerts: MakeAlerts
) -> None:
    """Someone with write access to the database dates a firing row of a fingerprint far in
    the future: every later alert of that fingerprint counted as a repeat within its throttle
    window, and no webhook ever heard of it (found by an attack session)."""
    alerts = make_alerts([receiver.url(GENERIC)], alert_throttle_seconds=3600)
    fingerprint = alerts.emit("critical", "Tampered memory row", "first")
    assert alerts.drain(5)
    assert len(receiver.wait_for(GENERIC, 1)) == 1
    with mw.store.write() as unit:
        unit.conn.execute(
            sa.text(
                "UPDATE alerts SET created_at = :at, last_seen_at = :at WHERE fingerprint = :f"
            ),
            {"at": datetime(2099, 1, 1), "f": fingerprint},
        )
    alerts.emit("critical", "Tampered memory row", "again, a new row")
    assert alerts.drain(5)
    assert [r.json()["message"] for r in receiver.wait_for(GENERIC, 2)][1].startswith("again")


def test_invalid_webhook_url_refuses_to_start(tmp_path: Path) -> None:
    Memwarden.init(Settings(home=tmp_path)).close()
    settings = Settings(home=tmp_path, alert_webhook="https://ok.example.org/h, not-a-url")
    with pytest.raises(AlertConfigError, match="MEMWARDEN_ALERT_WEBHOOK: .* is not an http"):
        Memwarden(settings)


def test_ledger_write_failure_raises_a_critical_alert(mw: Memwarden, receiver: Receiver) -> None:
    settings = with_alerts(mw.settings, alert_webhook=receiver.url(GENERIC))
    with Memwarden(settings) as other:
        with other.store.engine.begin() as conn:
            if other.store.is_sqlite:
                conn.exec_driver_sql(
                    "CREATE TRIGGER ledger_fail BEFORE INSERT ON ledger "
                    "BEGIN SELECT RAISE(ABORT, 'ledger is broken'); END"
                )
            else:
                conn.exec_driver_sql(
                    "CREATE FUNCTION ledger_fail() RETURNS trigger LANGUAGE plpgsql AS "
                    "$$ BEGIN RAISE EXCEPTION 'ledger is broken'; END $$"
                )
                conn.exec_driver_sql(
                    "CREATE TRIGGER ledger_fail BEFORE INSERT ON ledger "
                    "FOR EACH ROW EXECUTE FUNCTION ledger_fail()"
                )
        created = other.remember("atlas", "The mutation still succeeds")  # fail-open
        assert other.get(created.memory.id).content == "The mutation still succeeds"
        assert other.alerts.drain(10)
        (alert,) = other.alerts.history(severity="critical")
        assert alert.title == "Ledger write failed"
        payload = receiver.wait_for(GENERIC, 1)[0].json()
        assert (payload["severity"], payload["title"]) == ("critical", "Ledger write failed")


def test_a_failed_ledger_check_on_open_raises_a_critical_alert(
    mw: Memwarden, receiver: Receiver
) -> None:
    mw.remember("atlas", "The launch window opens in March")
    settings = with_alerts(mw.settings, alert_webhook=receiver.url(GENERIC))
    mw.close()
    with attacker(mw) as conn:
        head = conn.execute(sa.select(sa.func.max(schema.ledger_payloads.c.seq))).scalar_one()
        conn.execute(
            sa.update(schema.ledger_payloads)
            .where(schema.ledger_payloads.c.seq == head)
            .values(body="{}")
        )
    with Memwarden(settings) as reopened:
        assert reopened.open_check is not None and not reopened.open_check.ok
        assert reopened.alerts.drain(10)
        (alert,) = reopened.alerts.history(severity="critical")
        assert alert.title == "Ledger check failed" and alert.context["first_bad_seq"] == head
    payload = receiver.wait_for(GENERIC, 1)[0].json()
    assert (payload["severity"], payload["title"]) == ("critical", "Ledger check failed")
