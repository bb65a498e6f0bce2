"""Helpers for the capture, extraction and triage tests.

- ``cli_for``: the in-process CLI on the engine under test, initialised with project ``atlas``.
- ``run_with_input``: run a command with bytes on its standard input.
- ``ChatServer``: a real HTTP server on loopback speaking the OpenAI chat-completions API,
  whose answers a test scripts (JSON, prose, a wrong shape, an error status, slowness).
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from cli_support import Cli, Outcome, _command
from memwarden import Settings


def cli_for(settings: Settings) -> Cli:
    cli = Cli(settings.home, settings.database_url)
    cli.run("init")
    cli.run("project", "add", "atlas")
    return cli


def run_with_input(cli: Cli, data: bytes, *args: str, code: int = 0) -> Outcome:
    with cli.runner.isolation(input=data, env=cli.env) as (out, err, _mixed):
        try:
            _command().main(args=list(args), prog_name="memwarden")
            exit_code = 0
        except SystemExit as stop:
            exit_code = stop.code if isinstance(stop.code, int) else 1
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
        result = Outcome(exit_code, out.getvalue().decode(), err.getvalue().decode())
    assert result.exit_code == code, (
        f"memwarden {' '.join(args)}: exit {result.exit_code}, wanted {code}\n"
        f"stdout: {result.stdout}\nstderr: {result.stderr}"
    )
    assert "Traceback" not in result.stderr
    return result


# An answer: (status, body) or a callable producing it from the request JSON.
Answer = tuple[int, str] | Callable[[dict[str, Any]], tuple[int, str]]


def chat_body(content: str) -> str:
    """A chat-completions response whose message says ``content``."""
    return json.dumps(
        {
            "id": "chatcmpl-test",
            "object": "chat.completion",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content},
                    "finish_reason": "stop",
                }
            ],
        }
    )


def candidates_json(*items: tuple[str, str, float]) -> str:
    return json.dumps(
        {"candidates": [{"type": t, "content": c, "confidence": conf} for t, c, conf in items]}
    )


@dataclass
class ChatServer:
    """Answers POST /v1/chat/completions with the scripted answers, in order (the last repeats)."""

    answers: list[Answer] = field(default_factory=list)
    delay: float = 0.0
    requests: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    url: str = ""

    def next_answer(self, request: dict[str, Any]) -> tuple[int, str]:
        index = min(len(self.requests) - 1, len(self.answers) - 1)
        answer = self.answers[index]
        return answer(request) if callable(answer) else answer


@contextmanager
def chat_server(*answers: Answer, delay: float = 0.0) -> Iterator[ChatServer]:
    state = ChatServer(list(answers), delay)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            request = json.loads(self.rfile.read(length) or b"{}")
            state.requests.append(request)
            state.headers.append(dict(self.headers.items()))
            if self.path != "/v1/chat/completions":
                status, body = 404, '{"error": "not found"}'
            else:
                status, body = state.next_answer(request)
            if state.delay:
                time.sleep(state.delay)
            data = body.encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (a timeout test)

        def log_message(self, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def closed_port_url() -> str:
    """A loopback URL nothing listens on (the port was bound, then released)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"
