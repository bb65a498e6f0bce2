"""Publishing checkpoints for real: a loopback HTTP endpoint, a command, the alert webhook, a
folder (also read-only, and missing); retries, one alert per failing episode, its recovery."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from alert_support import Receiver
from memwarden import Memwarden, Settings
from memwarden.observability import alerts as alerts_package
from memwarden.observability.faults import active_faults, faults
from memwarden.tlog.note import Verifier, open_checkpoint

GENERIC = "/hook"


class PlainEndpoint:
    """Takes text/plain POSTs; answers each with the next planned status (then 200)."""

    def __init__(self) -> None:
        self.bodies: list[str] = []
        self.plan: list[int] = []
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                endpoint.bodies.append(body.decode())
                status = endpoint.plan.pop(0) if endpoint.plan else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/checkpoints"


@pytest.fixture
def endpoint() -> Iterator[PlainEndpoint]:
    server = PlainEndpoint()
    yield server
    server.server.shutdown()
    server.server.server_close()


@pytest.fixture(autouse=True)
def _no_faults() -> Iterator[None]:
    faults.reset()
    yield
    faults.reset()


def test_http_and_command_publishers_retry_alert_once_and_recover(
    settings: Settings, endpoint: PlainEndpoint, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    received = tmp_path / "received.txt"
    command = (
        f"{sys.executable} -c \"import sys; open({str(received)!r}, 'a').write(sys.stdin.read())\""
    )
    settings = settings.model_copy(
        update={
            "checkpoint_publish_url": endpoint.url,
            "checkpoint_publish_command": command,
            "checkpoint_publish_attempts": 3,
            "checkpoint_publish_backoff": 0.0,
        }
    )
    raised: list[tuple[str, str]] = []
    real_emit = alerts_package.emit_alert

    def spy(severity: str, title: str, *args: Any, **kwargs: Any) -> str:
        raised.append((severity, title))
        return real_emit(severity, title, *args, **kwargs)

    monkeypatch.setattr("memwarden.observability.faults.emit_alert", spy)
    with Memwarden.init(settings) as mw:
        mw.add_project("atlas")
        verifier = Verifier.parse(mw.checkpoint_verifier_key())
        endpoint.plan = [500, 503]  # two failures, then it takes it
        first = mw.checkpoint()
        assert [(p.publisher, p.ok, p.attempts) for p in first.publications] == [
            ("http", True, 3),
            ("command", True, 1),
        ]
        assert endpoint.bodies == [first.record.note] * 3
        assert open_checkpoint(endpoint.bodies[-1], verifier).size == 1
        assert received.read_text() == first.record.note

        endpoint.plan = [500, 500, 500, 500, 500, 500]  # down for two checkpoints
        for _ in range(2):
            mw.add_project(f"p{_}")
            failed = mw.checkpoint()
            assert not failed.published_ok
            assert "answered HTTP 500" in str(failed.publications[0].error)
        assert [f.key for f in active_faults()] == ["checkpoint-publish:http"]
        assert raised == [("critical", "Checkpoint publishing failed (http)")]  # once
        status = mw.checkpoint_status()
        assert status["healthy"] is False
        assert status["last_publication"]["http"]["state"] == "failed"

        back = mw.checkpoint()  # the endpoint is back: the episode ends
        assert back.published_ok and active_faults() == []
        assert mw.checkpoint_status()["healthy"] is True
        assert open_checkpoint(endpoint.bodies[-1], verifier).size == 3

    # A command that fails says why.
    broken = settings.model_copy(
        update={"checkpoint_publish_url": "", "checkpoint_publish_command": "false"}
    )
    with Memwarden(broken) as mw:
        (outcome,) = mw.checkpoint().publications
        assert not outcome.ok and outcome.attempts == 3 and "exited 1" in str(outcome.error)


def test_the_alert_webhook_carries_the_checkpoint_as_an_info_event(settings: Settings) -> None:
    receiver = Receiver()
    try:
        settings = settings.model_copy(
            update={"checkpoint_publish_webhook": True, "alert_webhook": receiver.url(GENERIC)}
        )
        with Memwarden.init(settings) as mw:
            mw.add_project("atlas")
            result = mw.checkpoint()
            assert result.published_ok
            mw.alerts.drain(10.0)
            (request,) = receiver.wait_for(GENERIC, 1)
        body = request.json()
        assert body["severity"] == "info" and body["title"] == "Ledger checkpoint"
        assert body["message"] == result.record.note
        # Without a webhook the alert would stay on the machine: that is a failure, said so.
        with Memwarden(settings.model_copy(update={"alert_webhook": ""})) as mw:
            (outcome,) = mw.checkpoint().publications
            assert not outcome.ok and "MEMWARDEN_ALERT_WEBHOOK is not set" in str(outcome.error)
    finally:
        receiver.close()


def test_a_read_only_or_missing_folder_fails_clearly(settings: Settings, tmp_path: Path) -> None:
    folder, view = tmp_path / "disk", tmp_path / "disk-ro"
    folder.mkdir()
    view.mkdir()
    subprocess.run(["mount", "--bind", str(folder), str(view)], check=True)
    try:
        subprocess.run(["mount", "-o", "remount,ro,bind", str(view)], check=True)
        settings = settings.model_copy(
            update={"checkpoint_publish_dir": view, "checkpoint_publish_backoff": 0.0}
        )
        with Memwarden.init(settings) as mw:
            mw.add_project("atlas")
            result = mw.checkpoint()
            (outcome,) = result.publications
            assert not outcome.ok and outcome.attempts == 3
            assert "Read-only file system" in str(outcome.error)
            assert list(folder.iterdir()) == []  # nothing half-written
            assert mw.checkpoints.latest() == result.record  # the checkpoint itself is kept
    finally:
        subprocess.run(["umount", str(view)], check=True)
    missing = settings.model_copy(update={"checkpoint_publish_dir": tmp_path / "unmounted"})
    with Memwarden(missing) as mw:
        (outcome,) = mw.checkpoint().publications
        assert "does not exist (is the disk mounted?)" in str(outcome.error)
    published = json.dumps([f.key for f in active_faults()])
    assert "checkpoint-publish:folder" in published


def test_the_nightly_run_signs_a_checkpoint_and_fails_its_step_when_unpublished(
    settings: Settings, tmp_path: Path
) -> None:
    from memwarden.nightly import run_nightly

    unmounted = tmp_path / "unmounted"
    settings = settings.model_copy(
        update={"checkpoint_publish_dir": unmounted, "checkpoint_publish_backoff": 0.0}
    )
    with Memwarden.init(settings) as mw:
        mw.add_project("atlas")
        run = run_nightly(mw, skip=["harness", "extract"])
        step = run.step("checkpoint")
        assert step is not None and step.status == "failed"
        assert step.counts == {"tree_size": 1, "published": 0, "failed": 1}
        assert "is the disk mounted" in str(step.error)
        unmounted.mkdir()
        run = run_nightly(mw, skip=["harness", "extract"])
        step = run.step("checkpoint")
        assert step is not None and step.status == "ok" and step.counts["published"] == 1
        assert (unmounted / "latest.checkpoint").read_text() == mw.checkpoints.latest().note  # type: ignore[union-attr]


def test_the_dashboard_shows_the_last_checkpoint_and_publishing_health(
    settings: Settings, tmp_path: Path
) -> None:
    from dashboard_support import dashboard_client, one, soup

    folder = tmp_path / "unmounted"
    settings = settings.model_copy(
        update={"checkpoint_publish_dir": folder, "checkpoint_publish_backoff": 0.0}
    )
    with Memwarden.init(settings) as mw:
        mw.add_project("atlas")
        with dashboard_client(mw) as client:
            page = soup(client.get("/dashboard/"))
            assert "no checkpoint yet" in one(page, "#tile-checkpoint").get_text()
            mw.checkpoint()
            tile = one(soup(client.get("/dashboard/")), "#tile-checkpoint")
            assert "bad" in tile["class"] and "publishing failing: folder" in tile.get_text()
            folder.mkdir()
            mw.checkpoint()
            tile = one(soup(client.get("/dashboard/")), "#tile-checkpoint")
            assert "ok" in tile["class"] and "published to folder" in tile.get_text()
            assert one(tile, ".big").get_text(strip=True) == "1 rows"
            data = client.get("/admin/dashboard").json()
            assert data["checkpoint"]["healthy"] is True
            assert data["checkpoint"]["latest"]["tree_size"] == 1


def test_verify_reads_a_published_checkpoint_from_a_url(settings: Settings) -> None:
    from cli_support import Cli

    published: dict[str, str] = {}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            body = published.get(self.path, "").encode()
            self.send_response(200 if body else 404)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        with Memwarden.init(settings) as mw:
            mw.add_project("atlas")
            published["/latest"] = mw.checkpoint().record.note
            mw.add_project("borealis")
        cli = Cli(settings.home, settings.database_url)
        report = cli.json("audit", "verify", "--checkpoint", f"{base}/latest")
        assert (
            report["ok"] and report["checkpoint"]["ok"] and report["checkpoint"]["ledger_size"] == 2
        )
        line = cli.error("audit", "verify", "--checkpoint", f"{base}/missing")
        assert "HTTP 404" in line
    finally:
        server.shutdown()
        server.server_close()
