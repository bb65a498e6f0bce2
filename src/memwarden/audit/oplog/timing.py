"""``with oplog.timed(...) as op:``: one operation, timed and logged when the block ends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from time import perf_counter_ns
from types import TracebackType
from typing import Any, Protocol

import structlog

from memwarden.audit.oplog.entry import OperationEntry

log = structlog.get_logger("memwarden.oplog")

_NEVER = datetime.min.replace(tzinfo=UTC)  # until the block is entered


class EntrySink(Protocol):
    """Where a timed operation's entry goes (``log.OpLog``): named here by what it does, so
    this module needs nothing from ``log`` and ``log`` imports it without a cycle."""

    def log(self, entry: OperationEntry) -> bool: ...


class Timed:
    """The handle of a timed operation: set ``response`` (and ``metadata``, ``project``)."""

    __slots__ = (
        "_oplog",
        "_t0",
        "action",
        "actor",
        "metadata",
        "project",
        "request",
        "response",
        "started_at",
        "transport",
    )

    def __init__(
        self,
        oplog: EntrySink,
        action: str,
        transport: str,
        project: str | None,
        request: Any,
        actor: str | None,
    ) -> None:
        self._oplog = oplog
        self.action = action
        self.transport = transport
        self.project = project
        self.request = request
        self.actor = actor
        self.response: Any = None
        self.metadata: dict[str, Any] = {}
        self.started_at = _NEVER
        self._t0 = 0

    def __enter__(self) -> Timed:
        self.started_at = datetime.now(UTC)
        self._t0 = perf_counter_ns()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # Returns None: an exception from the block goes on untouched.
        elapsed_ns = perf_counter_ns() - self._t0
        try:
            self._oplog.log(
                OperationEntry(
                    action=self.action,
                    transport=self.transport,
                    project=self.project,
                    started_at=self.started_at,
                    ended_at=self.started_at + timedelta(microseconds=elapsed_ns // 1000),
                    request=self.request,
                    response=self.response,
                    metadata=self.metadata,
                    error=exc_type.__name__ if exc_type is not None else None,
                    actor=self.actor,
                    duration_ms=elapsed_ns / 1e6,
                )
            )
        except Exception as failure:  # noqa: BLE001 - the log never affects the operation
            log.error("oplog_entry_failed", action=self.action, error=repr(failure)[:500])


class Untimed(Timed):
    """What ``timed`` returns for an action the allowlist leaves out: costs nothing, keeps nothing."""

    __slots__ = ()

    def __init__(self) -> None:
        pass

    def __enter__(self) -> Timed:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None

    def __setattr__(self, name: str, value: Any) -> None:
        pass

    def __getattr__(self, name: str) -> Any:
        # Slots never set on the shared instance read as empty.
        return {} if name == "metadata" else None


UNTIMED = Untimed()
