"""Every alert reaches the log: of `memwarden serve` (a real subprocess) and of the CLI, at
every severity, whatever MEMWARDEN_LOG_LEVEL filters out of the rest; JSON lines on request.
And as a library memwarden writes nothing to stdout."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from alert_support import Receiver
from api_support import MEMWARDEN, free_port
from cli_support import Cli
from memwarden import Memwarden, Settings

SRC = str(Path(__file__).resolve().parent.parent / "src")
HOOK = "/hook/logging-secret"


def environment(home: Path, **changes: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEMWARDEN_")}
    env["PYTHONPATH"] = os.pathsep.join([SRC, env.get("PYTHONPATH", "")])
    return env | {"MEMWARDEN_HOME": str(home)} | changes


def json_lines(text: str) -> list[dict[str, Any]]:
    found = []
    for line in text.splitlines():
        try:
            found.append(json.loads(line))
        except ValueError:
            continue
    return found


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


def test_serve_logs_info_and_warning_alerts(tmp_path: Path, receiver: Receiver) -> None:
    home = tmp_path / "home"
    Memwarden.init(Settings(home=home)).close()
    port = free_port()
    env = environment(home, MEMWARDEN_LOG_FORMAT="json", MEMWARDEN_ALERT_WEBHOOK=receiver.url(HOOK))
    process = subprocess.Popen(
        [MEMWARDEN, "serve", "--port", str(port), "--no-access-log"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(300):
            try:
                if httpx.get(f"{url}/health", timeout=1.0).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None, process.communicate()
            import time

            time.sleep(0.05)
        for severity in ("info", "warning"):
            raised = httpx.post(
                f"{url}/admin/alerts",
                json={"severity": severity, "title": f"served {severity}", "message": "m"},
            )
            assert raised.status_code == 202, raised.text
        receiver.wait_for(HOOK, 2)
    finally:
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    lines = json_lines(err)
    alerts = {line["title"]: line for line in lines if line.get("event") == "alert"}
    assert alerts["served info"]["severity"] == "info" and alerts["served info"]["level"] == "info"
    assert alerts["served warning"]["level"] == "warning"
    # INFO is serve's default level: the deliveries' own info events are there too.
    assert [line for line in lines if line.get("event") == "alert_delivered"]
    assert "served info" not in out  # stdout is the server's banner, not its log


def test_cli_logs_alerts_of_every_severity_whatever_the_level(tmp_path: Path) -> None:
    cli = Cli(tmp_path / "home")
    cli.run("init")
    info = cli.run("alert", "emit", "--severity", "info", "--title", "cli info", "--wait", "0")
    (line,) = [x for x in info.stderr.splitlines() if "cli info" in x]
    assert "alert" in line and "info" in line  # a console line on stderr...
    assert "cli info" not in info.stdout.split("\n", 1)[1]  # ...never in the command's output
    quiet = {"MEMWARDEN_LOG_FORMAT": "json", "MEMWARDEN_LOG_LEVEL": "critical"}
    warning = cli.run("alert", "emit", "--severity", "warning", "--title", "cli warning", env=quiet)
    (logged,) = [x for x in json_lines(warning.stderr) if x.get("event") == "alert"]
    assert (logged["title"], logged["severity"], logged["level"]) == (
        "cli warning",
        "warning",
        "warning",
    )
    bad = cli.run("alert", "list", env={"MEMWARDEN_LOG_LEVEL": "loud"}, code=1)
    assert bad.stderr.strip() == (
        "error: invalid setting MEMWARDEN_LOG_LEVEL: 'loud' is not one of "
        "debug, info, warning, error, critical"
    )


LIBRARY = """
import json, sys
from memwarden import Memwarden, Settings
from memwarden.observability.alerts import emit_alert
if sys.argv[2] == "host-logging":
    import logging
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="HOST %(message)s")
mw = Memwarden.init(Settings(home=sys.argv[1]))
emit_alert("warning", "library warning", "m")
emit_alert("info", "library info", "m")
mw.add_project("atlas")
assert mw.alerts.flush(10)
mw.close()
print(json.dumps({"ok": True}))
"""


@pytest.mark.parametrize("host", ["bare", "host-logging"])
def test_a_library_call_writes_nothing_to_stdout(tmp_path: Path, host: str) -> None:
    result = subprocess.run(
        [sys.executable, "-c", LIBRARY, str(tmp_path / "home"), host],
        env=environment(tmp_path / "home"),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == '{"ok": true}\n'  # the host's output alone
    assert "library warning" in result.stderr  # the log went to stderr (Python's last resort)
    if host == "host-logging":  # the host's logging configuration decides: INFO and its format
        assert any(
            line.startswith("HOST ") and "library info" in line
            for line in result.stderr.splitlines()
        )
