"""One HTTP attempt at a webhook, and what it means: delivered, retry (and when), or give up."""

from __future__ import annotations

import json
import math
import socket
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from memwarden.observability.alerts.targets import WebhookTarget
from memwarden.observability.backoff import verdict

MAX_RETRY_AFTER = 300.0  # seconds: a longer Retry-After is honoured up to this, then retried


@dataclass(frozen=True)
class Outcome:
    label: str  # delivered | rate_limited | http_error | timeout | connect_error | error
    ok: bool
    retryable: bool
    status_code: int | None
    latency_ms: float
    error: str | None = None
    retry_after: float | None = None  # seconds the receiver asked us to wait
    throttled: bool = False  # 429 or 503: the receiver asked us to slow down (not a failure)

    @property
    def permanent(self) -> bool:
        """Trying again cannot help: the target is misconfigured (or the URL is unusable)."""
        return not self.ok and not self.retryable


class Cancel:
    """Lets another thread cut a worker's attempt in flight short (closing, a receiver hangs).

    httpx offers no cancellation of a synchronous request, and closing its socket from another
    thread does not wake a blocked read on Linux; shutting the socket down does: the read ends
    at once and the attempt fails as a dropped connection. The socket is learnt from httpcore's
    ``trace`` extension when a connection is made (and after TLS wraps it): one client per
    worker sends one request at a time, so the newest connection is the one in use, reused or
    not. Once cancelled, any further step of a request shuts its connection down too."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._socket: socket.socket | None = None
        self.cancelled = False

    def trace(self, event: str, info: dict[str, Any]) -> None:
        if event in ("connection.connect_tcp.complete", "connection.start_tls.complete"):
            stream = info.get("return_value")
            found = stream.get_extra_info("socket") if stream is not None else None
            with self._lock:
                self._socket = found if isinstance(found, socket.socket) else None
        if self.cancelled:
            self._shut()

    def cancel(self) -> None:
        self.cancelled = True
        self._shut()

    def _shut(self) -> None:
        with self._lock:
            sock = self._socket
            if sock is None or sock.fileno() < 0:
                return
            try:
                # The plain socket's shutdown, also for a TLS socket: ``SSLSocket.shutdown``
                # would drop its TLS state under the reading thread's feet.
                socket.socket.shutdown(sock, socket.SHUT_RDWR)
            except OSError:
                pass  # already closed or never connected: nothing left to cut


def post(
    client: httpx.Client,
    target: WebhookTarget,
    body: bytes,
    headers: dict[str, str],
    timeout: float,
    cancel: Cancel | None = None,
) -> Outcome:
    started = time.perf_counter()
    extensions = {"trace": cancel.trace} if cancel is not None else None
    try:
        response = client.post(
            target.url, content=body, headers=headers, timeout=timeout, extensions=extensions
        )
    except httpx.TimeoutException as exc:
        return _failure(
            "timeout", started, f"no answer within {timeout:g} s ({type(exc).__name__})"
        )
    except httpx.ConnectError as exc:
        return _failure("connect_error", started, target.scrub(f"cannot connect: {exc}"))
    except httpx.UnsupportedProtocol as exc:
        return _failure("error", started, target.scrub(str(exc)), retryable=False)
    except httpx.HTTPError as exc:
        return _failure("error", started, target.scrub(f"{type(exc).__name__}: {exc}"))
    latency = (time.perf_counter() - started) * 1000
    code = response.status_code
    if 200 <= code < 300:
        return Outcome("delivered", True, False, code, latency)
    detail = target.scrub(response.text[:300].strip())
    error = f"HTTP {code}" + (f": {' '.join(detail.split())}" if detail else "")
    meaning = verdict(code)
    if meaning == "throttled":
        label = "rate_limited" if code == 429 else "http_error"
        return Outcome(label, False, True, code, latency, error, retry_after(response), True)
    return Outcome("http_error", False, meaning == "retry", code, latency, error)


def cut_short(seconds: float) -> Outcome:
    """An attempt ended by a close before the receiver answered: retried, as a timeout is."""
    error = f"no answer within {seconds:.1f} s, when memwarden closed (the attempt was cut short)"
    return Outcome("timeout", False, True, None, seconds * 1000, error)


def _failure(label: str, started: float, error: str, *, retryable: bool = True) -> Outcome:
    latency = (time.perf_counter() - started) * 1000
    return Outcome(label, False, retryable, None, latency, error)


def retry_after(response: httpx.Response) -> float | None:
    """Seconds to wait: Discord's JSON ``retry_after`` first, then the ``Retry-After`` header."""
    seconds: float | None = None
    if "json" in response.headers.get("content-type", ""):
        try:
            data = json.loads(response.content)
            if isinstance(data, dict) and isinstance(data.get("retry_after"), int | float):
                seconds = float(data["retry_after"])
        except ValueError:
            seconds = None
    if seconds is None:
        seconds = _header_seconds(response.headers.get("retry-after"))
    if seconds is None or not math.isfinite(seconds):
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def _header_seconds(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return float(value.strip())
    except ValueError:
        pass
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - datetime.now(UTC)).total_seconds()
