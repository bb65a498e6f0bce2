"""What raising an alert costs the caller: ``emit_alert`` latency while the webhook hangs, and
its throughput with every sink on.

Latency: per-call time of ``emit_alert`` (log, alerts file, outbox via the writer thread, one
webhook) while the webhook receiver accepts connections and never answers, so the delivery
worker sits in its 8 s timeout; the target is a p99 of at most 2 ms. Baseline: the same calls
with no webhook configured; beside it, the p99 with a receiver answering at once (the delivery
worker then busy sending every alert, a worst case no throttling softens: every alert is new). Throughput: alerts per second from the first call until
the last alert is committed to the outbox, every sink on (the log rendered to /dev/null, the
file, the database, a healthy webhook); the delivery rate that follows is reported beside it.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import structlog
from sqlalchemy import func, select

from bench._harness import Context, Engine, Result, benchmark, percentile
from memwarden import Memwarden
from memwarden.db import schema
from memwarden.observability import logs
from memwarden.observability.alerts import Alerts

P99_TARGET_MS = 2.0


class _Receiver:
    """A loopback webhook that answers 204 at once, or (``hang``) never answers."""

    def __init__(self, hang: bool) -> None:
        self.release = threading.Event()
        self.received = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                receiver.received += 1
                if hang:
                    receiver.release.wait(60)
                    return
                self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook/bench"

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@contextmanager
def _rendered_logs() -> Iterator[None]:
    """The structured log fully on (info and up, rendered as ``memwarden serve`` renders it),
    written to /dev/null.

    The whole configuration is ``logs.configure``'s, only the stream differs: a print logger
    under the library default's stdlib processors (which read ``logger.disabled``) made every
    log call raise, which is what killed the alert writer here."""
    previous = structlog.get_config()
    devnull = open(os.devnull, "w")
    logs.configure(logging.INFO)
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(devnull))
    try:
        yield
    finally:
        structlog.configure(**previous)
        devnull.close()


def _own_file(mw: Memwarden, phase: str, **update: Any) -> Any:
    """Settings with an alerts file of the phase's own: alerts an earlier phase dropped from a
    full queue are in the shared file, and a new ``Alerts`` replays them at start (its writer
    busy with them while the phase is timed)."""
    path = mw.settings.data_home / f"alerts-{phase}.log"
    return mw.settings.model_copy(update={"alert_log": path, **update})


@contextmanager
def _alerts(mw: Memwarden, hang: bool) -> Iterator[tuple[Alerts, _Receiver]]:
    receiver = _Receiver(hang)
    phase = "hanging" if hang else "healthy"
    alerts = Alerts(_own_file(mw, phase, alert_webhook=receiver.url), mw.store)
    try:
        yield alerts, receiver
    finally:
        receiver.release.set()
        alerts.close(timeout=2)
        receiver.close()


def _committed(alerts: Alerts, timeout: float) -> int:
    """Wait until every alert emitted so far is committed (or dropped); the number dropped."""
    assert alerts.flush(timeout), "the writer did not commit the alerts"
    return alerts.dropped()


def _emit_costs(alerts: Alerts, count: int, label: str) -> list[float]:
    clock = time.perf_counter
    costs = []
    for i in range(count):
        started = clock()
        alerts.emit("warning", f"{label} alert {i}", "a queue is long", {"queue": "triage", "i": i})
        costs.append(clock() - started)
    return costs


def _latency(ctx: Context, engine: Engine) -> Result:
    count = ctx.size(20_000, 5_000)
    with _rendered_logs(), ctx.memwarden(engine, f"alerts-latency-{engine}") as mw:
        # No webhook: log, file and database only.
        local = Alerts(_own_file(mw, "local"), mw.store)
        try:
            _emit_costs(local, 500, "warm-up")
            _committed(local, 60)
            baseline = _emit_costs(local, count, "no webhook")
            dropped = {"no_webhook": _committed(local, 120)}
        finally:
            local.close()
        with _alerts(mw, hang=False) as (alerts, _receiver):
            healthy = _emit_costs(alerts, count, "healthy")
            dropped["healthy"] = _committed(alerts, 120)
        with _alerts(mw, hang=True) as (alerts, receiver):
            alerts.emit(
                "critical", "first", "the worker now waits on a receiver that never answers"
            )
            deadline = time.monotonic() + 10
            while receiver.received == 0 and time.monotonic() < deadline:
                time.sleep(0.01)
            hanging = _emit_costs(alerts, count, "hanging")
            dropped["hanging"] = _committed(alerts, 120)
            stuck = receiver.received
            pending = alerts.pending()
    ms = [c * 1000 for c in hanging]
    return Result(
        f"alerts_emit_p99_hanging_{engine}",
        percentile(ms, 99),
        "ms",
        engine,
        count,
        baseline=percentile([c * 1000 for c in baseline], 99),
        baseline_label="p99 of the same calls with no webhook configured (log, file, database)",
        floor=P99_TARGET_MS,
        floor_on="value",
        better="lower",
        detail={
            "p50_ms": percentile(ms, 50),
            "p999_ms": percentile(ms, 99.9),
            "max_ms": max(ms),
            "healthy_receiver_p99_ms": percentile([c * 1000 for c in healthy], 99),
            "requests_while_hanging": stuck,
            "pending_deliveries": pending,
            # More alerts than the writer's queue holds, faster than it commits them: the
            # overflow is dropped from the database (a cheap call), counted and announced.
            "dropped_from_db": dropped,
        },
    )


def _throughput(ctx: Context, engine: Engine) -> Result:
    count = ctx.size(20_000, 5_000)
    with _rendered_logs(), ctx.memwarden(engine, f"alerts-throughput-{engine}") as mw:
        with _alerts(mw, hang=False) as (alerts, receiver):
            # Bursts that fit the writer's queue (a full queue drops rather than make the
            # caller wait): the rate is sustained throughput, each burst committed in turn.
            burst = 5_000
            started = time.perf_counter()
            costs: list[float] = []
            called = 0.0
            for first in range(0, count, burst):
                burst_started = time.perf_counter()
                costs += _emit_costs(alerts, min(burst, count - first), f"throughput {first}")
                called += time.perf_counter() - burst_started
                assert _committed(alerts, 300) == 0, "a burst that fits the queue was dropped"
            committed = time.perf_counter() - started
            window = 5.0
            before = receiver.received
            time.sleep(window)
            delivered_rate = (receiver.received - before) / window
            with mw.store.read() as conn:
                rows = conn.execute(select(func.count()).select_from(schema.alerts)).scalar_one()
            assert rows == count, f"{rows} alert rows for {count} alerts"
            lines = alerts.settings.resolved_alert_log.read_bytes().count(b"\n")
    return Result(
        f"alerts_emit_throughput_{engine}",
        count / committed,
        "alerts/s",
        engine,
        count,
        detail={
            "caller_calls_per_s": count / called,
            "caller_p99_ms": percentile(costs, 99) * 1000,
            "seconds_to_commit": committed,
            "file_lines": lines,
            "webhook_deliveries_per_s": delivered_rate,
        },
    )


@benchmark(
    "alerts",
    "emit_alert p99 while the webhook hangs (≤2 ms), emit throughput with all sinks on",
    order=60,
)
def run(ctx: Context) -> list[Result]:
    results: list[Result] = []
    engines: tuple[Engine, ...] = ("sqlite", "postgresql")
    for engine in engines:
        if engine == "postgresql" and ctx.pg_url is None:
            results.append(ctx.skipped_pg("alerts_emit_p99_hanging_postgresql", "ms"))
            results.append(ctx.skipped_pg("alerts_emit_throughput_postgresql", "alerts/s"))
            continue
        results.append(_latency(ctx, engine))
        results.append(_throughput(ctx, engine))
    return results
