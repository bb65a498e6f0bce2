"""Alerts that reached the file but not the database (their process died) are replayed at the
next start, exactly once, through the writer: on both engines, against a real HTTP receiver."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import structlog

from alert_support import Receiver, fast_policy, with_alerts
from core_support import inserts_refused
from memwarden import Memwarden
from memwarden.db import migrate, schema
from memwarden.observability.alerts import Alerts, model, replay
from memwarden.observability.alerts import writer as writer_module
from memwarden.observability.alerts.replay import Report

GENERIC = "/hook/replay-secret"

MakeAlerts = Callable[..., Alerts]

# A process that raises one alert and is then killed: its writer lingers on the alert for an
# hour, so the alert is in the file (written at once) and its commit never comes.
CHILD = """
import json, os, sys
from memwarden.observability.alerts import writer
writer.LINGER = 3600.0
from memwarden import Memwarden, Settings
home, url, webhook = sys.argv[1:4]
settings = Settings(home=home, database_url=url or None, alert_webhook=webhook)
mw = Memwarden(settings)
fingerprint = mw.alerts.emit(
    "critical", "Killed before its commit", "raised just before SIGKILL", {"disk": "/dev/sda"}
)
print("RAISED", json.dumps({"pid": os.getpid(), "fingerprint": fingerprint}), flush=True)
sys.stdin.readline()
"""


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


@pytest.fixture
def make_alerts(mw: Memwarden, receiver: Receiver) -> Iterator[MakeAlerts]:
    """A fresh ``Alerts`` on ``mw``'s home and database (a process starting), with a webhook."""
    made: list[Alerts] = []

    def make(**changes: object) -> Alerts:
        settings = with_alerts(mw.settings, alert_webhook=receiver.url(GENERIC), **changes)
        alerts = Alerts(settings, mw.store, policy=fast_policy(settings))
        made.append(alerts)
        return alerts

    yield make
    for alerts in made:
        alerts.close(timeout=2)


def replayed(alerts: Alerts) -> Report:
    assert alerts.flush(10)
    assert alerts.replayed is not None
    return alerts.replayed


def counts(report: Report) -> dict[str, int]:
    return {
        "replayed": report.replayed,
        "already": report.already,
        "failed": report.failed,
        "torn": report.torn,
        "garbage": report.garbage,
    }


def file_records(path: Path) -> list[dict[str, Any]]:
    records = []
    for raw in path.read_bytes().split(b"\n"):
        try:
            records.append(json.loads(raw))
        except ValueError:
            continue
    return records


def emit_ids(mw: Memwarden) -> dict[str, int]:
    with mw.store.read() as conn:
        rows = conn.execute(sa.select(schema.alert_emits.c.emit_id, schema.alert_emits.c.alert_id))
        return {row.emit_id: row.alert_id for row in rows}


def line(
    mw: Memwarden, title: str, *, at: datetime | None = None, **changes: Any
) -> dict[str, Any]:
    """A file line as an ``Alerts`` of ``mw``'s database writes it, for an alert never stored."""
    alert = model.build("warning", title, f"{title}: message", {"n": 1})
    return {
        "ts": (at or datetime.now(UTC)).isoformat(),
        "event": "alert",
        "severity": alert.severity,
        "title": alert.title,
        "message": alert.message,
        "context": alert.context,
        "fingerprint": alert.fingerprint,
        "emit_id": alert.emit_id,
        "pid": 4242,
        "database_id": mw.alerts.database_id,
    } | changes


def encoded(record: dict[str, Any]) -> bytes:
    return json.dumps(record, separators=(",", ":")).encode("ascii")


def append(path: Path, *parts: bytes) -> None:
    with path.open("ab") as handle:
        handle.write(b"".join(parts))


def test_an_alert_killed_before_its_commit_is_delivered_once_after_restart(
    mw: Memwarden, receiver: Receiver, make_alerts: MakeAlerts
) -> None:
    path = mw.settings.resolved_alert_log
    assert mw.alerts.flush(5)  # this process's own start-up replay is over
    append(path, b"a line some other program wrote\n")
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            CHILD,
            str(mw.settings.home),
            mw.settings.database_url or "",
            receiver.url(GENERIC),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={k: v for k, v in os.environ.items() if not k.startswith("MEMWARDEN_")},
    )
    try:
        assert child.stdout is not None
        said = ""
        while not said.startswith("RAISED "):  # the child's log shares its stdout
            said = child.stdout.readline()
            assert said, "the child exited before raising its alert"
        started = json.loads(said.removeprefix("RAISED "))
    finally:
        child.send_signal(signal.SIGKILL)
        child.communicate(timeout=30)
    assert child.returncode == -signal.SIGKILL
    # The next process to die does so in the middle of writing its line.
    append(path, b'{"ts":"' + datetime.now(UTC).isoformat().encode() + b'","event":"alert","sev')

    (raised,) = [r for r in file_records(path) if r.get("title") == "Killed before its commit"]
    assert raised["fingerprint"] == started["fingerprint"] and raised["pid"] == started["pid"]
    assert raised["database_id"] == mw.alerts.database_id
    assert mw.alerts.history() == [] and emit_ids(mw) == {}  # in the file only
    assert receiver.on(GENERIC) == []

    restarted = make_alerts()
    assert counts(replayed(restarted)) == {
        "replayed": 1,
        "already": 0,
        "failed": 0,
        "torn": 1,
        "garbage": 1,
    }
    (row,) = restarted.history()
    assert (row.title, row.severity, row.context) == (
        "Killed before its commit",
        "critical",
        {"disk": "/dev/sda"},
    )
    assert row.created_at == datetime.fromisoformat(raised["ts"])  # its original time
    assert emit_ids(mw) == {raised["emit_id"]: row.id}
    assert restarted.drain(10)
    (got,) = receiver.wait_for(GENERIC, 1)
    assert got.json()["title"] == "Killed before its commit"
    assert got.json()["fingerprint"] == started["fingerprint"]
    restarted.close()

    again = make_alerts()  # a second start: nothing left to replay
    assert counts(replayed(again)) == {
        "replayed": 0,
        "already": 1,
        "failed": 0,
        "torn": 1,
        "garbage": 1,
    }
    assert again.drain(5, everything=True)
    time.sleep(0.3)  # a duplicate delivery would be on its way by now
    assert len(receiver.on(GENERIC)) == 1 and len(again.history()) == 1


def test_torn_and_garbage_lines_are_skipped_and_counted(
    mw: Memwarden, make_alerts: MakeAlerts
) -> None:
    path = mw.settings.resolved_alert_log
    now = datetime.now(UTC)
    stale = line(mw, "from the day before yesterday", at=now - timedelta(hours=25))
    torn_piece = encoded(line(mw, "cut short"))[:70]
    append(
        path,
        encoded(stale) + b"\n",  # past the horizon: the scan stops there
        b"not JSON at all\n",
        b"[1, 2, 3]\n",
        b'{"ts": "yesterday", "event": "alert"}\n',
        b"\xff\xfe invalid UTF-8\n",
        encoded(line(mw, "unknown severity", severity="fatal")) + b"\n",
        encoded(line(mw, "odd id", emit_id="../../etc/passwd")) + b"\n",
        encoded(line(mw, "another database", database_id="f" * 32)) + b"\n",
        encoded({k: v for k, v in line(mw, "no database").items() if k != "database_id"}) + b"\n",
        encoded({"ts": now.isoformat(), "event": "alert_resolved", "fingerprint": "x"}) + b"\n",
        torn_piece + encoded(line(mw, "after a torn line")) + b"\n",  # appended to torn bytes
        b"\x00" * 40 + encoded(line(mw, "after zeroed bytes")) + b"\n",  # power loss
        b"\n",
        encoded(line(mw, "whole")) + b"\n",
        encoded(line(mw, "the last, cut"))[:90],
    )
    alerts = make_alerts()
    report = replayed(alerts)
    assert counts(report) == {"replayed": 3, "already": 0, "failed": 0, "torn": 3, "garbage": 6}
    assert report.lines == 14  # the blank line is no line; the stale one stopped the scan
    assert [a.title for a in reversed(alerts.history())] == [
        "after a torn line",
        "after zeroed bytes",
        "whole",
    ]


def test_only_the_newest_lines_and_backups_as_far_as_needed_are_read(
    mw: Memwarden, make_alerts: MakeAlerts, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = mw.settings.resolved_alert_log
    now = datetime.now(UTC)
    old = [line(mw, f"old {i}", at=now - timedelta(hours=30, minutes=i)) for i in range(50)]
    path.with_name("alerts.log.3").write_bytes(encoded(line(mw, "never read")) + b"\n")
    path.with_name("alerts.log.2").write_bytes(b"".join(encoded(r) + b"\n" for r in old[::-1]))
    path.with_name("alerts.log.1").write_bytes(encoded(line(mw, "rotated away")) + b"\n")
    append(path, *(encoded(line(mw, f"current {i}")) + b"\n" for i in range(3)))
    report = replayed(make_alerts())
    assert (report.replayed, report.lines) == (4, 3 + 1 + 1)  # one line of .2 told enough
    assert {a.title for a in mw.alerts.history()} == {
        "current 0",
        "current 1",
        "current 2",
        "rotated away",
    }

    monkeypatch.setattr(replay, "MAX_LINES", 2)
    append(path, *(encoded(line(mw, f"burst {i}")) + b"\n" for i in range(5)))
    report = replayed(make_alerts())
    assert (report.replayed, report.lines) == (2, 2)  # the newest two
    assert {a.title for a in mw.alerts.history() if a.title.startswith("burst")} == {
        "burst 3",
        "burst 4",
    }


def test_repeats_folded_by_throttling_are_not_replayed_and_replays_are_throttled(
    mw: Memwarden, receiver: Receiver, make_alerts: MakeAlerts
) -> None:
    live = make_alerts()
    for _ in range(3):
        live.emit("warning", "Candidate queue above 200", "m", {"queue": 250})
    assert live.drain(10)
    (head,) = live.history()
    assert head.count == 3
    raised = [r["emit_id"] for r in file_records(mw.settings.resolved_alert_log)]
    assert emit_ids(mw) == dict.fromkeys(raised, head.id)  # the folded ones are recorded too

    path = mw.settings.resolved_alert_log
    append(path, *(encoded(line(mw, "Disk almost full")) + b"\n" for _ in range(2)))
    restarted = make_alerts()
    report = replayed(restarted)
    assert (report.replayed, report.already) == (2, 3)
    assert restarted.drain(10)
    rows = {a.title: a.count for a in restarted.history()}
    assert rows == {"Candidate queue above 200": 3, "Disk almost full": 2}  # one row, counted
    time.sleep(0.3)
    titles = [r.json()["title"] for r in receiver.on(GENERIC)]
    assert sorted(titles) == ["Candidate queue above 200", "Disk almost full"]  # one each


def test_a_line_the_live_process_has_not_committed_is_stored_once(
    mw: Memwarden,
    receiver: Receiver,
    make_alerts: MakeAlerts,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A process starts while another one's writer still holds its alerts: both store them,
    at the same moment; each alert ends up stored and delivered once, nothing fails."""
    monkeypatch.setattr(writer_module, "LINGER", 3600.0)
    live = make_alerts()
    for i in range(60):
        live.emit("warning", f"problem {i % 40}", "m")  # 40 problems, 20 of them repeated
    with structlog.testing.capture_logs() as logs:
        starting: list[Alerts] = []
        flushed: list[bool] = []
        threads = [
            threading.Thread(target=lambda: flushed.append(live.flush(20))),
            threading.Thread(target=lambda: starting.append(make_alerts())),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        (other,) = starting
        report = replayed(other)
        assert flushed == [True]
    assert report.replayed + report.already == 60 and report.failed == 0
    assert not [e for e in logs if e["event"] in ("alert_store_failed", "alert_batch_write_failed")]
    assert len(emit_ids(mw)) == 60
    rows = other.history(limit=100)
    assert len(rows) == 40 and sum(r.count for r in rows) == 60
    assert live.drain(10) and other.drain(10, everything=True)
    time.sleep(0.3)
    assert len(receiver.on(GENERIC)) == 40


def test_the_replay_never_holds_up_start_up(
    mw: Memwarden, make_alerts: MakeAlerts, monkeypatch: pytest.MonkeyPatch
) -> None:
    release = threading.Event()
    real_scan = replay.scan

    def slow_scan(*args: Any) -> list[model.Alert]:
        release.wait(30)
        return real_scan(*args)

    monkeypatch.setattr(replay, "scan", slow_scan)
    append(mw.settings.resolved_alert_log, encoded(line(mw, "left behind")) + b"\n")
    began = time.monotonic()
    alerts = make_alerts()
    alerts.emit("info", "raised at once", "the caller never waits for the replay")
    assert time.monotonic() - began < 1.0
    assert not alerts.flush(0.2)  # the writer is still replaying
    release.set()
    # The live alert's line was in the file before the scan ran, but it was raised after this
    # Alerts started: the live writer stores it, the replay leaves it alone.
    assert replayed(alerts).replayed == 1
    assert {a.title for a in alerts.history()} == {"left behind", "raised at once"}
    assert len(emit_ids(mw)) == 2


def test_old_emit_ids_are_pruned(mw: Memwarden, make_alerts: MakeAlerts) -> None:
    now = datetime.now(UTC)
    with mw.store.write() as unit:
        unit.conn.execute(
            sa.insert(schema.alert_emits),
            [
                {"emit_id": "a" * 32, "alert_id": 1, "emitted_at": now - timedelta(hours=26)},
                {"emit_id": "b" * 32, "alert_id": 2, "emitted_at": now - timedelta(hours=23)},
            ],
        )
    assert make_alerts().flush(10)
    assert set(emit_ids(mw)) == {"b" * 32}  # still within what a replay may read


def test_the_emit_id_migration_goes_down_and_up_on_its_own(mw: Memwarden) -> None:
    migrate.downgrade(mw.store, "0009_alert_emits@-1")
    try:
        assert "0009_alert_emits" not in migrate.current_revisions(mw.store)
        names = set(sa.inspect(mw.store.engine).get_table_names())
        assert "alert_emits" not in names and {"alerts", "alert_deliveries"} <= names
    finally:
        migrate.upgrade(mw.store)
    assert migrate.current_revisions(mw.store) == migrate.head_revisions()
    mw.alerts.emit("info", "after a round trip", "stored with its emit id")
    assert mw.alerts.flush(5) and len(emit_ids(mw)) == 1


def test_an_alert_the_database_refused_is_replayed_resolved_when_it_cleared_meanwhile(
    mw: Memwarden, receiver: Receiver, make_alerts: MakeAlerts
) -> None:
    """The database refused the alert (a trigger: as when it is down) and took its resolution
    once the problem cleared, when there was no row to resolve. The next start replayed the
    alert firing and it stayed firing for good: in the history, in ``doctor``, and at the
    webhook, which never heard it had cleared. Now the resolution is read back too."""
    live = make_alerts()
    assert live.flush(10)
    with inserts_refused(mw, "alerts"), structlog.testing.capture_logs():
        fingerprint = live.emit("critical", "Disk almost full", "/var at 98%", {"disk": "/var"})
        assert live.flush(10)
    assert live.history(fingerprint=fingerprint) == []  # in the file only
    live.resolve(fingerprint)
    assert live.flush(10)
    assert live.history(fingerprint=fingerprint) == []  # nothing there to resolve
    live.close(timeout=5)

    restarted = make_alerts()
    report = replayed(restarted)
    assert (report.replayed, report.resolved) == (1, 1)
    (row,) = restarted.history(fingerprint=fingerprint)
    assert row.status == "resolved" and row.resolved_at is not None
    assert restarted.drain(10)
    got = receiver.wait_for(GENERIC, 2)
    assert [g.json().get("status", "firing") for g in got] == ["firing", "resolved"]
    restarted.close(timeout=5)

    again = make_alerts()  # idempotent: nothing more to do at the next start
    assert (replayed(again).replayed, replayed(again).resolved) == (0, 0)


def test_a_resolution_read_back_leaves_an_alert_raised_again_after_it(
    mw: Memwarden, make_alerts: MakeAlerts
) -> None:
    live = make_alerts()
    assert live.flush(10)
    with inserts_refused(mw, "alerts"), structlog.testing.capture_logs():
        fingerprint = live.emit("critical", "Disk almost full", "/var at 98%", {"disk": "/var"})
        assert live.flush(10)
    live.resolve(fingerprint)
    time.sleep(0.01)
    live.emit("critical", "Disk almost full", "/var at 99%", {"disk": "/var"})  # again, stored
    assert live.flush(10)
    live.close(timeout=5)

    restarted = make_alerts()
    report = replayed(restarted)
    assert (report.replayed, report.resolved) == (1, 0)
    rows = restarted.history(fingerprint=fingerprint)
    assert [r.status for r in rows] == ["firing"]


def test_a_resolution_read_back_ends_only_the_episode_it_closed(
    mw: Memwarden, make_alerts: MakeAlerts
) -> None:
    """During an outage a fault was raised and cleared, neither reaching the database; it came
    back later and is stored firing. The replay stores the old alert as a row of its own and
    the resolution ends that row only: the live one stays firing (a review found the first
    version resolved every firing row of the fingerprint)."""
    live = make_alerts()
    assert live.flush(10)
    fingerprint = live.emit("critical", "Disk almost full", "/var at 99%", {"disk": "/var"})
    assert live.flush(10)
    now = datetime.now(UTC)
    path = mw.settings.resolved_alert_log
    old = line(mw, "Disk almost full", at=now - timedelta(seconds=120), fingerprint=fingerprint)
    resolved = {
        "ts": (now - timedelta(seconds=90)).isoformat(),
        "event": "alert_resolved",
        "severity": "info",
        "fingerprint": fingerprint,
        "pid": 4242,
        "database_id": mw.alerts.database_id,
    }
    nul = resolved | {"fingerprint": "a fingerprint with a \u0000 in it"}
    append(path, encoded(old), b"\n", encoded(resolved), b"\n", encoded(nul), b"\n")
    live.close(timeout=5)

    restarted = make_alerts()
    report = replayed(restarted)
    assert (report.replayed, report.resolved) == (1, 1)
    rows = {row.created_at: row.status for row in restarted.history(fingerprint=fingerprint)}
    assert sorted(rows.values()) == ["firing", "resolved"]
    assert rows[datetime.fromisoformat(old["ts"])] == "resolved"
