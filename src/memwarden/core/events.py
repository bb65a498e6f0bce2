"""Events published after a mutation commits; listeners never affect the mutation."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import structlog

from memwarden.audit.entries import LedgerEntry

log = structlog.get_logger(__name__)

Listener = Callable[[LedgerEntry], None]


@dataclass
class EventBus:
    listeners: list[Listener]

    def __init__(self) -> None:
        self.listeners = []

    def subscribe(self, listener: Listener) -> None:
        self.listeners.append(listener)

    def publish(self, entries: list[LedgerEntry]) -> None:
        for entry in entries:
            for listener in self.listeners:
                try:
                    listener(entry)
                except Exception:  # fail-open: the mutation has already committed
                    log.exception(
                        "event_listener_failed", action=entry.action, entity=entry.entity_id
                    )
