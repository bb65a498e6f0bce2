"""A real HTTP receiver on loopback that plays Discord, Slack and a generic webhook.

Each path has a script of responses (status, headers, body, or "hang" for a while); once the
script runs out the path answers success. Discord and Slack paths check the payload's shape and
limits (Discord counts UTF-16 units) and answer 400 with the violations, as the real services do.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

DISCORD_PREFIX = "/api/webhooks/"
SLACK_PREFIX = "/services/"


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float
    violations: list[str] = field(default_factory=list)

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Step:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    hang: float = 0.0  # seconds to wait before answering (a hanging receiver)


def _u16(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def discord_violations(data: Any) -> list[str]:
    problems: list[str] = []
    if not isinstance(data, dict) or not isinstance(data.get("embeds"), list):
        return ["no embeds list"]
    embeds = data["embeds"]
    if not 1 <= len(embeds) <= 10:
        problems.append(f"{len(embeds)} embeds")
    total = 0
    for embed in embeds:
        title = embed.get("title", "")
        description = embed.get("description", "")
        footer = embed.get("footer", {}).get("text", "")
        fields = embed.get("fields", [])
        if _u16(title) > 256:
            problems.append(f"title {_u16(title)} > 256")
        if _u16(description) > 4096:
            problems.append(f"description {_u16(description)} > 4096")
        if _u16(footer) > 2048:
            problems.append(f"footer {_u16(footer)} > 2048")
        if len(fields) > 25:
            problems.append(f"{len(fields)} fields > 25")
        color = embed.get("color", 0)
        if not isinstance(color, int) or not 0 <= color <= 0xFFFFFF:
            problems.append(f"bad color {color!r}")
        total += _u16(title) + _u16(description) + _u16(footer)
        for item in fields:
            name, value = item.get("name", ""), item.get("value", "")
            if not name.strip() or not value.strip():
                problems.append("empty field name or value")
            if _u16(name) > 256 or _u16(value) > 1024:
                problems.append(f"field too long ({_u16(name)}, {_u16(value)})")
            total += _u16(name) + _u16(value)
    if total > 6000:
        problems.append(f"embeds total {total} > 6000")
    if data.get("allowed_mentions") != {"parse": []}:
        problems.append("mentions not disabled")
    return problems


def slack_violations(data: Any) -> list[str]:
    if not isinstance(data, dict) or not isinstance(data.get("text"), str):
        return ["no text"]
    problems: list[str] = []
    for attachment in data.get("attachments", []):
        blocks = attachment.get("blocks", [])
        if len(blocks) > 50:
            problems.append("more than 50 blocks")
        for block in blocks:
            if block["type"] == "header" and len(block["text"]["text"]) > 150:
                problems.append("header > 150")
            if block["type"] == "section":
                if "text" in block and len(block["text"]["text"]) > 3000:
                    problems.append("section text > 3000")
                for item in block.get("fields", []):
                    if len(item["text"]) > 2000:
                        problems.append("field > 2000")
                if len(block.get("fields", [])) > 10:
                    problems.append("more than 10 fields")
            for text in _texts(block):
                if "<!" in text:
                    problems.append("unescaped mention")
    return problems


def _texts(block: dict[str, Any]) -> list[str]:
    found = []
    if "text" in block:
        found.append(block["text"]["text"])
    found += [f["text"] for f in block.get("fields", [])]
    found += [e["text"] for e in block.get("elements", [])]
    return found


class Receiver:
    def __init__(self, port: int = 0) -> None:
        self.requests: list[Received] = []
        self.scripts: dict[str, list[Step]] = {}
        self.lock = threading.Lock()
        self.release = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                receiver._handle(self, body)

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def plan(self, path: str, *steps: Step) -> None:
        with self.lock:
            self.scripts[path] = list(steps)

    def on(self, path: str) -> list[Received]:
        with self.lock:
            return [r for r in self.requests if r.path.split("?")[0] == path]

    def wait_for(self, path: str, count: int, timeout: float = 10.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.on(path)
            if len(got) >= count:
                return got
            time.sleep(0.02)
        raise AssertionError(f"{path}: {len(self.on(path))} requests, wanted {count}")

    def _handle(self, handler: BaseHTTPRequestHandler, body: bytes) -> None:
        path = handler.path.split("?")[0]
        received = Received(
            path, {k.lower(): v for k, v in handler.headers.items()}, body, time.monotonic()
        )
        try:
            data = json.loads(body)
        except ValueError:
            data = None
            received.violations.append("body is not JSON")
        if path.startswith(DISCORD_PREFIX):
            received.violations += discord_violations(data)
        elif path.startswith(SLACK_PREFIX):
            received.violations += slack_violations(data)
        with self.lock:
            self.requests.append(received)
            script = self.scripts.get(path, [])
            step = script.pop(0) if script else None
        if step is not None and step.hang:
            self.release.wait(step.hang)
            return  # answer nothing: the client times out
        if received.violations:
            step = Step(
                400, {"Content-Type": "application/json"}, json.dumps(received.violations).encode()
            )
        elif step is None:
            step = Step(
                204 if path.startswith(DISCORD_PREFIX) else 200,
                {},
                b"" if path.startswith(DISCORD_PREFIX) else b"ok",
            )
        handler.send_response(step.status)
        for key, value in step.headers.items():
            handler.send_header(key, value)
        handler.send_header("Content-Length", str(len(step.body)))
        handler.end_headers()
        handler.wfile.write(step.body)

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


def closed_port() -> int:
    """A loopback port nothing listens on (connection refused)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = int(sock.getsockname()[1])
    sock.close()
    return port


def verify_signature(received: Received, secret: str) -> bool:
    stamp = received.headers.get("x-memwarden-timestamp", "")
    expected = hmac.new(secret.encode(), stamp.encode() + b"." + received.body, hashlib.sha256)
    return hmac.compare_digest(
        received.headers.get("x-memwarden-signature", ""), "sha256=" + expected.hexdigest()
    )


FAST = {"alert_webhook_timeout": 3.0, "alert_webhook_attempts": 3, "alert_webhook_backoff": 0.02}


def with_alerts(settings: Any, **changes: Any) -> Any:
    """A copy of ``settings`` with fast delivery and the given alert settings."""
    return settings.model_copy(update={**FAST, **changes})


def fast_policy(settings: Any, **changes: Any) -> Any:
    from dataclasses import replace

    from memwarden.observability.alerts.service import policy_from

    return replace(policy_from(settings), poll=0.1, **changes)
