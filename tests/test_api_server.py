"""A real ``memwarden serve`` (uvicorn) on a free loopback port: start, serve, refuse to
listen beyond loopback without keys, and shut down cleanly on SIGTERM and SIGINT."""

from __future__ import annotations

import signal
import socket
import subprocess
from pathlib import Path

import httpx
import pytest

from api_support import MEMWARDEN, Server, auth, free_port, server_env
from cli_support import Cli
from memwarden import Memwarden, Settings


@pytest.fixture
def home_settings(tmp_path: Path) -> Settings:
    settings = Settings(home=tmp_path / "home")
    with Memwarden.init(settings) as mw:
        mw.add_project("atlas")
    return settings


def test_serves_then_stops_cleanly_on_sigterm(home_settings: Settings) -> None:
    server = Server(home_settings)
    try:
        server.wait_ready()
        created = httpx.post(
            f"{server.url}/memory", json={"project": "atlas", "content": "Served over real HTTP"}
        )
        assert created.status_code == 201, created.text
        memory_id = created.json()["memory"]["id"]
        assert (
            httpx.get(f"{server.url}/memory/{memory_id}").json()["content"]
            == "Served over real HTTP"
        )
        assert httpx.get(f"{server.url}/nope").json()["error"]["code"] == "not_found"
        metrics = httpx.get(f"{server.url}/metrics").text
        assert 'route="/memory",status="201"' in metrics
    finally:
        code, out, err = server.stop(signal.SIGTERM)
    assert code == 0, err
    assert out.strip().endswith("memwarden API stopped (SIGTERM)")
    assert f"http://127.0.0.1:{server.port}" in out and "open: no API keys" in out
    assert "Traceback" not in err
    with Memwarden(home_settings) as mw:
        assert mw.history(memory_id)[0].actor == "api-http"
        assert mw.verify().ok  # the witness was flushed on the way out


def test_refuses_a_non_loopback_bind_without_keys(home_settings: Settings) -> None:
    result = subprocess.run(
        [MEMWARDEN, "serve", "--host", "0.0.0.0", "--port", str(free_port())],
        env=server_env(home_settings),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "refusing to listen on 0.0.0.0 without API keys" in lines[0]
    assert "memwarden key create" in lines[0] and result.stdout == ""


def test_beyond_loopback_with_a_key_then_sigint(home_settings: Settings) -> None:
    with Memwarden(home_settings) as mw:
        _, token = mw.create_key("ops", "write")
    server = Server(home_settings, host="0.0.0.0")
    try:
        server.wait_ready()
        refused = httpx.post(f"{server.url}/memory", json={"project": "atlas", "content": "x"})
        assert refused.status_code == 401
        made = httpx.post(
            f"{server.url}/memory",
            json={"project": "atlas", "content": "With a key"},
            headers=auth(token),
        )
        assert made.status_code == 201
    finally:
        code, out, err = server.stop(signal.SIGINT)
    assert code == 0 and "1 API key(s)" in out and "stopped (SIGINT)" in out
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    with Memwarden(home_settings) as mw:
        assert mw.history(made.json()["memory"]["id"])[0].actor == "api:ops"


def test_refuses_an_uninitialised_database(tmp_path: Path) -> None:
    cli = Cli(tmp_path / "empty")
    assert "memwarden init" in cli.error("serve", "--port", str(free_port()))


def test_a_port_in_use_is_one_clear_error(home_settings: Settings) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        error = Cli(home_settings.home).error("serve", "--port", str(port))
    assert error == f"error: cannot listen on 127.0.0.1:{port}: Address already in use"
