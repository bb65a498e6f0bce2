"""One logged operation, and the transports an operation can arrive by."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

# How an operation reached memwarden. ``library`` is a direct call from embedding Python code
# (nothing set a transport); the faces set theirs with ``via(...)``.
TRANSPORTS = ("http", "cli", "mcp", "harness", "bench", "system", "library")
DEFAULT_TRANSPORT = "library"


@dataclass(slots=True)
class OperationEntry:
    """What was asked, by which transport, for which project, and how long it took.

    ``request``, ``response`` and ``metadata`` may hold any Python values: the writer
    normalises and encodes them off the caller's path. Once logged, an entry belongs to the
    log: the caller must not mutate the values it handed over.
    """

    action: str
    transport: str
    project: str | None
    started_at: datetime
    ended_at: datetime
    request: Any = None
    response: Any = None
    metadata: dict[str, Any] = field(default_factory=dict)
    error: str | None = None  # the exception type's name when the operation raised
    actor: str | None = None
    duration_ms: float | None = None  # exact, when measured; else ended_at - started_at

    @property
    def duration(self) -> float:
        if self.duration_ms is not None:
            return self.duration_ms
        return (self.ended_at - self.started_at).total_seconds() * 1000.0
