"""The local sinks (log, file), the table, and fail-open behaviour, on both engines."""

from __future__ import annotations

import json
import os
import subprocess
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa
import structlog

from conftest import raw_engine
from memwarden import Memwarden, Settings
from memwarden.db import migrate
from memwarden.db import schema as db_schema
from memwarden.observability.alerts import Alerts, emit_alert, reset_fallback, resolve_alert
from memwarden.observability.alerts.sinks import FileSink

NASTY_TITLE = 'Disk\nfull\r\n{"severity":"info","forged":true}\x1b[2J\u2028\x85end'
NASTY_MESSAGE = (
    "first line\nsecond line\r\n\x00\x07\x1b[31m\u2028\u2029\x85\x0b\x0c\x1c" + "é" * 10_240
)


def file_lines(path: Path) -> list[dict[str, object]]:
    """Every line, split the way the most eager reader would (all Unicode line breaks)."""
    text = path.read_bytes().decode("utf-8")
    return [json.loads(line) for line in text.splitlines()]


def test_newlines_control_characters_and_10kb_never_forge_a_line(mw: Memwarden) -> None:
    fp = emit_alert(
        "critical", NASTY_TITLE, NASTY_MESSAGE, {"why": "multi\nline", "bytes": b"\x00\xff"}
    )
    emit_alert("warning", "second", "plain")
    assert mw.alerts.flush(5)
    lines = file_lines(mw.settings.resolved_alert_log)
    assert len(lines) == 2
    first = lines[0]
    assert first["fingerprint"] == fp and first["severity"] == "critical"
    assert "\n" not in str(first["title"]) and str(first["title"]).startswith("Disk full")
    assert first["message"] == NASTY_MESSAGE.replace("\x00", "\ufffd")  # whole, 10 KB and all
    assert "forged" not in lines[1]
    (row,) = mw.alerts.history(severity="critical")
    assert row.message == first["message"] and row.title == first["title"]
    assert row.context == {"why": "multi\nline", "bytes": "\ufffd\ufffd"}
    raw = mw.settings.resolved_alert_log.read_bytes()
    assert raw.count(b"\n") == 2 and raw.isascii()


def test_the_file_rotates_by_size(tmp_path: Path) -> None:
    sink = FileSink(tmp_path / "alerts.log", max_bytes=4096, backups=2)
    for i in range(120):
        sink.write({"n": i, "text": "x" * 100})
    sink.close()
    files = sorted(tmp_path.iterdir())
    assert [f.name for f in files] == ["alerts.log", "alerts.log.1", "alerts.log.2"]
    seen = []
    for name in ("alerts.log.2", "alerts.log.1", "alerts.log"):
        path = tmp_path / name
        assert 0 < path.stat().st_size <= 4096
        seen += [line["n"] for line in file_lines(path)]
    assert seen == list(range(seen[0], 120))  # the newest lines, in order, none torn


def test_two_writers_on_one_file_lose_no_line_across_rotations(tmp_path: Path) -> None:
    """Two sinks on one path stand for two processes: each notices the other's rotations."""
    first, second = (FileSink(tmp_path / "alerts.log", max_bytes=4096, backups=60) for _ in "ab")
    for i in range(400):
        (first if i % 3 else second).write({"n": i, "text": "y" * 100})
    first.close()
    second.close()
    seen = sorted(line["n"] for path in tmp_path.iterdir() for line in file_lines(path))
    assert seen == list(range(400))
    assert len(list(tmp_path.iterdir())) > 5


def test_1000_alerts_from_8_threads(mw: Memwarden) -> None:
    def work(thread: int) -> None:
        for i in range(125):
            mw.alerts.emit("warning", f"thread {thread} alert {i}", "m" * 200, {"i": i})

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert mw.alerts.flush(30)
    lines = file_lines(mw.settings.resolved_alert_log)
    assert len(lines) == 1000 and len({line["title"] for line in lines}) == 1000
    with mw.store.read() as conn:
        rows = conn.execute(sa.select(sa.func.count()).select_from(db_schema.alerts)).scalar_one()
    assert rows == 1000


@pytest.mark.parametrize(
    "how",
    [
        "directory",
        "under_a_file",
        pytest.param(
            "read_only",
            marks=pytest.mark.skipif(
                os.geteuid() == 0, reason="root writes read-only files anyway"
            ),
        ),
    ],
)
def test_an_unwritable_alerts_file_does_not_stop_the_other_sinks(
    mw: Memwarden, tmp_path: Path, how: str
) -> None:
    if how == "directory":
        target = tmp_path / "a_directory"
        target.mkdir()
    elif how == "under_a_file":
        (tmp_path / "plain_file").write_text("x")
        target = tmp_path / "plain_file" / "alerts.log"
    else:
        target = tmp_path / "alerts.log"
        target.write_text("")
        target.chmod(0o444)
    settings = mw.settings.model_copy(update={"alert_log": target})
    alerts = Alerts(settings, mw.store)
    try:
        with structlog.testing.capture_logs() as logs:
            assert alerts.emit("critical", "still raised", "the file cannot be written") != ""
        assert alerts.flush(5)
        assert [a.title for a in alerts.history()] == ["still raised"]
        events = [e["event"] for e in logs]
        assert "alert" in events  # the log sink
        failure = next(e for e in logs if e["event"] == "alert_sink_failed")
        assert failure["sink"] == "file" and failure["path"] == str(target)
        assert alerts.sink_failures == 1
    finally:
        alerts.close()


def test_a_broken_alerts_table_never_reaches_the_caller(mw: Memwarden) -> None:
    migrate.downgrade(mw.store, "0012_alert_delivery@-1")  # it stands on 0002_alerts
    migrate.downgrade(mw.store, "0002_alerts@-1")  # the tables are gone under a running process
    try:
        with structlog.testing.capture_logs() as logs:
            emit_alert("critical", "no table", "still in the log and the file")
            assert mw.alerts.flush(5)
        assert any(e["event"] == "alert_store_failed" for e in logs)
        titles = [line["title"] for line in file_lines(mw.settings.resolved_alert_log)]
        assert "no table" in titles
        # The missing table is itself the storage fault "database schema damaged": alerted
        # through the sinks that still work.
        assert "database schema damaged" in titles
    finally:
        migrate.upgrade(mw.store)


def test_emit_alert_invalid_severity_falls_back_to_info(mw: Memwarden) -> None:
    with structlog.testing.capture_logs() as logs:
        emit_alert("fatal", "odd", "m")
    for severity, title in [("critical", "c1"), ("info", "i2"), ("warning", "w1")]:
        emit_alert(severity, title, "m")
    assert mw.alerts.flush(5)
    odd = mw.alerts.history()[-1]
    assert odd.severity == "info" and odd.context["requested_severity"] == "fatal"
    assert "unknown severity 'fatal'" in odd.message
    assert file_lines(mw.settings.resolved_alert_log)[0]["severity"] == "info"
    assert [e["log_level"] for e in logs if e["event"] == "alert"] == ["info"]
    last = mw.alerts.last_per_severity()  # what the dashboard shows
    assert {k: v.title for k, v in last.items()} == {
        "info": "i2",
        "warning": "w1",
        "critical": "c1",
    }


def test_without_a_database_the_log_and_file_still_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MEMWARDEN_HOME", str(tmp_path))
    monkeypatch.setenv("MEMWARDEN_ALERT_WEBHOOK", "not a url at all")  # ignored without a database
    reset_fallback()
    try:
        fp = emit_alert("warning", "before init", "no database yet")
        resolve_alert(fp)
        lines = file_lines(tmp_path / "alerts.log")
        assert [line["event"] for line in lines] == ["alert", "alert_resolved"]
        monkeypatch.setenv("MEMWARDEN_ALERT_LOG_MAX_BYTES", "not a number")
        reset_fallback()
        with structlog.testing.capture_logs() as logs:
            assert emit_alert("critical", "broken settings", "m") != ""
        assert {"alert_settings_unusable", "alert"} <= {e["event"] for e in logs}
    finally:
        reset_fallback()


def test_an_open_memwarden_receives_emit_alert_and_hands_back_on_close(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home")
    with Memwarden.init(settings) as mw:
        emit_alert("info", "routed", "to the open database")
        assert mw.alerts.flush(5)
        assert [a.title for a in mw.alerts.history()] == ["routed"]
    emit_alert("info", "after close", "to the fallback")
    with Memwarden(settings) as reopened:
        assert reopened.alerts.flush(5)  # the start-up replay of the alerts file, committed
        assert [a.title for a in reopened.alerts.history()] == ["routed"]


def test_a_full_queue_drops_at_once_and_then_says_how_many(
    mw: Memwarden, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The writer is stuck behind another transaction's lock: the queue fills, each further
    alert is dropped from the database at once (never from the file), and once the writer
    catches up one warning says how many never reached it."""
    from memwarden.observability.alerts import writer as writer_module

    monkeypatch.setattr(writer_module, "QUEUE_SIZE", 5)
    alerts = Alerts(mw.settings, mw.store)
    blocker = raw_engine(mw.settings)
    try:
        with blocker.connect() as conn:
            if conn.dialect.name == "sqlite":
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            else:
                conn.exec_driver_sql("BEGIN")
                conn.exec_driver_sql("LOCK TABLE alerts IN ACCESS EXCLUSIVE MODE")
            alerts.emit("info", "first", "taken by the writer, which then waits on the lock")
            threading.Event().wait(0.5)  # past the writer's linger: it is inside its write
            for i in range(8):
                alerts.emit("info", f"storm {i}", "queued or dropped")
            conn.exec_driver_sql("ROLLBACK")
        assert alerts.flush(30)
        rows = alerts.history(limit=100)
    finally:
        alerts.close()
        blocker.dispose()
    (notice,) = [r for r in rows if r.title == "Alerts dropped: the alert queue was full"]
    assert notice.severity == "warning" and notice.context["dropped"] == 3
    assert len([r for r in rows if r.title.startswith("storm")]) == 5  # the queue's worth
    lines = file_lines(mw.settings.resolved_alert_log)
    # Every alert reached the file, and so did the notice (an alert like any other).
    assert len(lines) == 10 and lines[-1]["title"] == notice.title


# -- the seed's own tests, by name ----------------------------------------------------------------


def test_emit_alert_writes_log_file(mw: Memwarden) -> None:
    emit_alert("warning", "Queue long", "212 candidates wait", {"queue": 212})
    assert mw.alerts.flush(5)
    lines = file_lines(mw.settings.resolved_alert_log)
    assert len(lines) == 1
    line = lines[0]
    assert (line["severity"], line["title"], line["message"]) == (
        "warning",
        "Queue long",
        "212 candidates wait",
    )
    assert line["context"] == {"queue": 212}


def test_emit_alert_fails_open_on_log_write_error(mw: Memwarden, tmp_path: Path) -> None:
    """The alerts file on a read-only mount (a real EROFS, which root cannot write through
    either): emit_alert returns, the log and the table still get the alert."""
    writable, readonly = tmp_path / "logs", tmp_path / "logs-ro"
    writable.mkdir()
    readonly.mkdir()
    subprocess.run(["mount", "--bind", str(writable), str(readonly)], check=True)
    try:
        subprocess.run(["mount", "-o", "remount,ro,bind", str(readonly)], check=True)
        settings = mw.settings.model_copy(update={"alert_log": readonly / "alerts.log"})
        with Memwarden(settings) as blocked, structlog.testing.capture_logs() as logs:
            emit_alert("critical", "Disk trouble", "the alerts file cannot be written")
            assert blocked.alerts.flush(5)
            assert [a.title for a in blocked.alerts.history()] == ["Disk trouble"]
        assert "alert" in [e["event"] for e in logs]  # the structured log
        failure = next(e for e in logs if e["event"] == "alert_sink_failed")
        assert failure["sink"] == "file"
        assert not (writable / "alerts.log").exists()
    finally:
        subprocess.run(["umount", str(readonly)], check=True)
