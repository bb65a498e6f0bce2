"""Prometheus metrics of one app: requests, latency, mutations, ledger failures, and more.

Each app has its own ``CollectorRegistry`` (several apps in one process never collide).
Other parts of memwarden add their own collectors through ``Metrics.counter`` / ``gauge`` /
``histogram`` (get-or-create by name) or ``Metrics.register`` (a custom collector read at
scrape time); ``create_app(..., extensions=[...])`` hands them the app's ``Metrics``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

if TYPE_CHECKING:
    from memwarden.audit.entries import LedgerEntry
    from memwarden.core.service import Memwarden

UNMATCHED = "<unmatched>"
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._collectors: dict[str, Any] = {}
        self.requests = self.counter(
            "memwarden_http_requests_total",
            "HTTP requests by method, route template and status",
            ("method", "route", "status"),
        )
        self.latency = self.histogram(
            "memwarden_http_request_duration_seconds",
            "HTTP request latency by method, route template and status",
            ("method", "route", "status"),
            buckets=LATENCY_BUCKETS,
        )
        self.mutations = self.counter(
            "memwarden_mutations_total",
            "Committed mutations by entity type and ledger action",
            ("entity", "action"),
        )
        self.ledger_failures = self.counter(
            "memwarden_ledger_write_failures_total",
            "Mutations whose ledger entries could not be written (fail-open)",
        )
        self._oplog = _OpLogCollector()
        self.register(self._oplog)

    # -- the registry other parts add to ------------------------------------------------
    def counter(self, name: str, documentation: str, labels: Sequence[str] = ()) -> Counter:
        return self._get_or_create(Counter, name, documentation, labels)  # type: ignore[no-any-return]

    def gauge(self, name: str, documentation: str, labels: Sequence[str] = ()) -> Gauge:
        return self._get_or_create(Gauge, name, documentation, labels)  # type: ignore[no-any-return]

    def histogram(
        self, name: str, documentation: str, labels: Sequence[str] = (), **kwargs: Any
    ) -> Histogram:
        return self._get_or_create(Histogram, name, documentation, labels, **kwargs)  # type: ignore[no-any-return]

    def register(self, collector: Collector) -> None:
        self.registry.register(collector)

    def _get_or_create(
        self, kind: type[Any], name: str, documentation: str, labels: Sequence[str], **kwargs: Any
    ) -> Any:
        found = self._collectors.get(name)
        if found is None:
            found = kind(
                name, documentation, labelnames=tuple(labels), registry=self.registry, **kwargs
            )
            self._collectors[name] = found
        elif not isinstance(found, kind):
            raise ValueError(f"metric {name} exists as a {type(found).__name__}")
        return found

    # -- feeding it ------------------------------------------------------------------------
    def watch(self, mw: Memwarden) -> None:
        """Count mutations from the runtime's event bus and ledger failures from its hook."""
        mw.runtime.events.subscribe(self._on_entry)
        mw.ledger.failure_hooks.append(self._on_ledger_failure)
        self._oplog.mw = mw  # the backend reopens after each lifespan: one collector, re-aimed

    def _on_entry(self, entry: LedgerEntry) -> None:
        self.mutations.labels(entry.entity_type, entry.action).inc()

    def _on_ledger_failure(self, _exc: Exception, _entries: list[LedgerEntry]) -> None:
        self.ledger_failures.inc()

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class _OpLogCollector(Collector):
    """The operation log's writer counters, read at scrape time."""

    def __init__(self) -> None:
        self.mw: Memwarden | None = None

    def collect(self) -> Iterator[Metric]:
        if self.mw is None:
            return
        counts = self.mw.oplog.counters()
        queued = GaugeMetricFamily(
            "memwarden_oplog_queued", "Operation log entries waiting for the writer thread"
        )
        queued.add_metric([], counts["queued"])
        yield queued
        for name, help_text in (
            ("written", "Operation log entries written"),
            ("dropped", "Operation log entries dropped because the queue was full"),
            ("failed", "Operation log entries whose insert failed (fail-open)"),
        ):
            family = CounterMetricFamily(f"memwarden_oplog_{name}", help_text)
            family.add_metric([], counts[name])
            yield family


class MetricsMiddleware:
    """Times every HTTP request; labels it with its route template, never the raw path."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = scope.get("route")
            template = (
                getattr(route, "path_format", None) or getattr(route, "path", None) or UNMATCHED
            )
            labels = (scope["method"], str(template), str(status))
            self.metrics.requests.labels(*labels).inc()
            self.metrics.latency.labels(*labels).observe(time.perf_counter() - started)
