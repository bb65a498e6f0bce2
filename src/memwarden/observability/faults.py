"""Fault episodes: a fault an operator must act on is announced once, and its end is too.

A fault (an unwritable witness, a full disk, PostgreSQL gone, a dead-lettered alert, …) is
named by a stable ``key``. ``raise_fault`` raises a critical alert the first time a key becomes
active, and only then: repeats within one episode are counted, not re-sent. ``clear_fault``
ends the episode with a resolved notice. Whatever is active shows in ``/health`` (status
``degraded``) and in ``memwarden doctor``.

The register is per process (each serving process reports its own faults in its ``/health``);
faults that must outlive a process are kept by their owner (the witness file, the outbox) and
re-raised from there on the next start. Each episode's alert names its process (``pid``,
``host``), and its history row stays ``firing`` until the episode ends, so ``doctor``, in a
process of its own, also lists the episodes other processes have open
(``alerts.history.firing_faults``).
"""

from __future__ import annotations

import os
import socket
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from memwarden.observability.alerts import emit_alert, resolve_alert


@dataclass
class Fault:
    key: str
    title: str
    message: str
    severity: str
    since: datetime
    last_seen: datetime
    occurrences: int = 1
    context: dict[str, Any] = field(default_factory=dict)
    fingerprint: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "title": self.title,
            "message": self.message,
            "severity": self.severity,
            "since": self.since.isoformat(),
            "last_seen": self.last_seen.isoformat(),
            "occurrences": self.occurrences,
        }


class FaultRegister:
    """The faults active in this process. Thread-safe; never raises into its caller."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._active: dict[str, Fault] = {}

    def raise_fault(
        self,
        key: str,
        title: str,
        message: str,
        context: dict[str, Any] | None = None,
        *,
        severity: str = "critical",
    ) -> bool:
        """Mark ``key`` active. Returns True when this started a new episode (and alerted)."""
        now = datetime.now(UTC)
        with self._lock:
            fault = self._active.get(key)
            if fault is not None:
                fault.occurrences += 1
                fault.last_seen = now
                fault.message = message
                return False
            fault = Fault(key, title, message, severity, now, now, context=dict(context or {}))
            self._active[key] = fault
        where = {"fault": key, "pid": os.getpid(), "host": socket.gethostname()}
        fault.fingerprint = emit_alert(
            severity, title, message, {**fault.context, **where}, fingerprint=_print(key)
        )
        return True

    def clear_fault(self, key: str) -> bool:
        """End the episode of ``key``. Returns True when one was active (and a resolved
        notice went out)."""
        with self._lock:
            fault = self._active.pop(key, None)
        if fault is None:
            return False
        # The resolved notice reaches the log, the alerts file and every webhook that was told
        # of the fault; the alert's history row is marked resolved.
        resolve_alert(fault.fingerprint or _print(key))
        return True

    def is_active(self, key: str) -> bool:
        with self._lock:
            return key in self._active

    def active(self) -> list[Fault]:
        with self._lock:
            return sorted(self._active.values(), key=lambda f: f.since)

    def reset(self) -> None:
        """Forget every fault without notices (tests)."""
        with self._lock:
            self._active.clear()


FINGERPRINT_PREFIX = "fault:"


def _print(key: str) -> str:
    return f"{FINGERPRINT_PREFIX}{key}"[:64]


faults = FaultRegister()
"""The process-wide register."""

raise_fault = faults.raise_fault
clear_fault = faults.clear_fault
active_faults = faults.active
