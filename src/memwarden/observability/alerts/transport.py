"""One HTTP attempt at a webhook, and what it means: delivered, retry (and when), or give up."""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

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


def post(
    client: httpx.Client,
    target: WebhookTarget,
    body: bytes,
    headers: dict[str, str],
    timeout: float,
) -> Outcome:
    started = time.perf_counter()
    try:
        response = client.post(target.url, content=body, headers=headers, timeout=timeout)
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
