"""Helpers the API tests share: a client over an app, and a real ``memwarden serve`` process."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from fastapi.testclient import TestClient

from memwarden import Memwarden, Settings
from memwarden.api import create_app

MEMWARDEN = str(Path(sys.executable).with_name("memwarden"))


@contextmanager
def client_for(mw: Memwarden, **options: Any) -> Iterator[TestClient]:
    with TestClient(
        create_app(memwarden=mw, **options),
        base_url="http://127.0.0.1",  # an open server answers loopback host names only
        raise_server_exceptions=False,
    ) as client:
        yield client


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_error(response: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    """The response is ``status`` in the one error shape; returns the error object."""
    assert response.status_code == status, (response.status_code, response.text)
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert isinstance(error["message"], str) and error["message"], body
    assert isinstance(error["code"], str) and error["code"], body
    if code is not None:
        assert error["code"] == code, body
    return dict(error)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_env(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEMWARDEN_")}
    env["MEMWARDEN_HOME"] = str(settings.home)
    env["MEMWARDEN_EMBEDDER"] = settings.embedder  # the suite's default: none (conftest.py)
    # The suite's default: off (conftest.py).
    env["MEMWARDEN_ALERT_STATE_PROJECT"] = settings.alert_state_project
    if settings.database_url:
        env["MEMWARDEN_DATABASE_URL"] = settings.database_url
    return env


class Server:
    """A ``memwarden serve`` subprocess on a free loopback port."""

    def __init__(self, settings: Settings, *args: str, host: str = "127.0.0.1") -> None:
        self.port = free_port()
        self.host = host
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [
                MEMWARDEN,
                "serve",
                "--host",
                host,
                "--port",
                str(self.port),
                "--no-access-log",
                *args,
            ],
            env=server_env(settings),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                out, err = self.process.communicate()
                raise AssertionError(f"server exited {self.process.returncode}: {out}\n{err}")
            try:
                if httpx.get(f"{self.url}/health", timeout=1.0).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise AssertionError("server did not become ready")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> tuple[int, str, str]:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            out, err = self.process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            out, err = self.process.communicate()
            raise AssertionError(f"server ignored signal {sig}: {err}") from None
        return self.process.returncode, out, err


@contextmanager
def running_server(settings: Settings, *args: str) -> Iterator[Server]:
    server = Server(settings, *args)
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()
