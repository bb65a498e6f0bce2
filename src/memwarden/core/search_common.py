"""What the full-text search of both engines shares (``search``): the corpora, the plan of
one search, its bounds and the small per-database cache of facts costly to learn."""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine, TextClause, bindparam, text

MAX_TERMS = 12
MIN_CAP = 500
CAP_FRACTION = 0.01
BOOST_FACTOR = 4  # terms in up to BOOST_FACTOR × cap documents still add to the score
OVERFETCH = 8  # top rows ranked on the index alone, per result asked for, before filtering
COMMON_TTL = 60.0  # seconds a term found common (or PostgreSQL's statistics) is trusted
CACHE_LIMIT = 20_000


@dataclass(frozen=True)
class Scored:
    id: int
    score: float


@dataclass(frozen=True)
class Corpus:
    """One searchable table: its rows, its index and the filters it accepts."""

    table: str
    sqlite_fts: str
    sqlite_vocab: str
    kind: str


MEMORIES = Corpus("memories", "memories_fts", "memories_fts_vocab", "memory")
CHUNKS = Corpus("source_chunks", "chunks_fts", "chunks_fts_vocab", "chunk")


@dataclass(frozen=True)
class Plan:
    """What to rank: ``any_of`` OR-ed, plus ``all_of`` as one group that must co-occur, the
    candidates; ``boost`` only adds to the score of candidates that hold its terms."""

    any_of: list[str]
    all_of: list[str]
    boost: list[str] = field(default_factory=list)


class Cache:
    """Small, thread-safe, time-limited memory of per-database facts that are costly to learn.

    Kept per engine (and dropped with it), so two databases never share an entry."""

    def __init__(self, limit: int = CACHE_LIMIT) -> None:
        self.limit = limit  # entries per database; at the limit, all are dropped
        self._lock = threading.Lock()
        self._items: weakref.WeakKeyDictionary[Engine, dict[tuple[str, str], tuple[float, Any]]]
        self._items = weakref.WeakKeyDictionary()

    def get(self, conn: Connection, key: tuple[str, str]) -> Any:
        with self._lock:
            item = self._items.get(conn.engine, {}).get(key)
        if item is None or item[0] < time.monotonic():
            return None
        return item[1]

    def put(self, conn: Connection, key: tuple[str, str], value: Any) -> None:
        with self._lock:
            items = self._items.setdefault(conn.engine, {})
            if len(items) >= self.limit:
                items.clear()
            items[key] = (time.monotonic() + COMMON_TTL, value)


cache = Cache()
# Each word ever searched is one entry here: kept apart, so that many words never flush the
# few costly facts above (the planner's statistics, a corpus's size).
stems = Cache()


def filter_sql(
    corpus: Corpus, project: str | None, types: Sequence[str] | None, superseded: bool = False
) -> str:
    clauses = []
    if corpus is MEMORIES:
        # Superseded memories only when a recall asks to see what changed.
        clauses.append(
            "t.status IN ('active', 'superseded')" if superseded else "t.status = 'active'"
        )
        if types:
            clauses.append("t.type IN :types")
    if project is not None:
        clauses.append("t.project = :project")
    return (" AND " + " AND ".join(clauses)) if clauses else ""


def filter_params(project: str | None, types: Sequence[str] | None) -> dict[str, object]:
    params: dict[str, object] = {}
    if project is not None:
        params["project"] = project
    if types:
        params["types"] = list(types)
    return params


def bound(corpus: Corpus, sql: str, types: Sequence[str] | None) -> TextClause:
    statement = text(sql)
    if corpus is MEMORIES and types:
        statement = statement.bindparams(bindparam("types", expanding=True))
    return statement


def row_count(conn: Connection, corpus: Corpus) -> int:
    """About how many rows the corpus holds: the largest id is close enough and costs nothing."""
    return int(conn.execute(text(f"SELECT max(id) FROM {corpus.table}")).scalar() or 0)  # noqa: S608


def cap_for(conn: Connection, corpus: Corpus) -> int:
    """The search's bound for this corpus (``cap_of`` its rows)."""
    return cap_of(row_count(conn, corpus))


def cap_of(rows: int) -> int:
    """The search's bound for a corpus of ``rows`` rows: 1% of them, at least ``MIN_CAP``."""
    return max(MIN_CAP, int(rows * CAP_FRACTION))
