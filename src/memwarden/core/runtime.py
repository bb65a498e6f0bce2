"""The runtime every domain module shares, and the one path every mutation takes.

``runtime.mutation()`` opens one write transaction; the domain writes its rows and records
ledger entries on it; the ledger appends them just before the commit (row and entry commit
together or not at all); events are published after the commit.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection

from memwarden.audit.entries import LedgerBuffer
from memwarden.audit.ledger import Ledger
from memwarden.config import Settings
from memwarden.core.embedding import Embedders
from memwarden.core.embedding.worker import EmbedWorker
from memwarden.core.events import EventBus
from memwarden.core.tamper import RowGuard
from memwarden.db.store import Store


@dataclass
class Mutation:
    conn: Connection
    ledger: LedgerBuffer
    now: datetime
    guard: RowGuard  # makes each written row's MAC; refuses to build on a tampered row

    def record(
        self,
        entity_type: str,
        entity_id: str | int,
        project: str | None,
        action: str,
        before: dict[str, Any] | None,
        after: dict[str, Any] | None,
        note: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        self.ledger.record(entity_type, entity_id, project, action, before, after, note, extra)


class Runtime:
    def __init__(self, settings: Settings, store: Store, ledger: Ledger) -> None:
        self.settings = settings
        self.store = store
        self.ledger = ledger
        self.events = EventBus()
        self.guard = RowGuard(ledger)  # row MACs: made by every write, checked by every read
        # API key rows found to match their ledger record, as read (core/keys.py).
        self.vouched_keys: dict[int, tuple[Any, ...]] = {}
        # Erasure receipts the ledger was found to vouch for (core/erasure/scrub.py).
        self.vouched_receipts: set[int] = set()
        # Recall's embedder (loaded on first use) and the thread that writes vectors after
        # each commit.
        self.embedders = Embedders(settings)
        self.embed_worker = EmbedWorker(store, self.embedders)

    @contextmanager
    def mutation(self) -> Iterator[Mutation]:
        with self.store.write() as unit:
            buffer = self.ledger.attach(unit)
            unit.after_commit.append(lambda: self.events.publish(buffer.entries))
            yield Mutation(unit.conn, buffer, datetime.now(UTC), self.guard)

    @contextmanager
    def read(self) -> Iterator[Connection]:
        with self.store.read() as conn:
            yield conn
