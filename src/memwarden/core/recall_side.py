"""A text recall's full-text searches shared with a second thread while the caller runs them.

A text recall searches each corpus (memories, chunks) in each scope. The searches are
independent and most of their time is spent in the database (SQLite's C code, or a
PostgreSQL backend), which releases the GIL: on a second thread they overlap. The searches
wait in one line; the caller takes them from its front on its own connection, a pooled
thread from the back on a connection of its own, so in a snapshot that may be a
moment apart from the caller's. That is safe because candidates are only ids and scores:
``rank`` reads every candidate's facts again on the caller's connection and filters them
there (project, status, type), so nothing is served from the other snapshot and a candidate
gone from the caller's is dropped. A metadata filter is applied only inside the search, so
a recall with one keeps all its searches on the caller's connection (``recall.py``).

The thread takes a search only once it holds its connection, and the caller waits only for
a search the thread has taken: when the pool is busy with other recalls, or the database's
connection pool is, the caller runs the whole line itself and never waits on a thread that
has not started.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Hashable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Generic, TypeVar

from sqlalchemy import Connection

from memwarden.core import search
from memwarden.core.runtime import Runtime

WORKERS = 2
Key = TypeVar("Key", bound=Hashable)
Search = Callable[[Connection], list[search.Scored]]

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _executor() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(WORKERS, thread_name_prefix="memwarden-search")
        return _pool


class _Line(Generic[Key]):
    """The searches not yet taken; once the caller has taken the last, the thread takes none."""

    def __init__(self, keys: list[Key]) -> None:
        self._waiting = deque(keys)
        self._lock = threading.Lock()
        self.taken_by_thread = 0

    def front(self) -> Key | None:
        with self._lock:
            return self._waiting.popleft() if self._waiting else None

    def back(self) -> Key | None:
        with self._lock:
            if not self._waiting:
                return None
            self.taken_by_thread += 1
            return self._waiting.pop()

    def close(self) -> int:
        """Take nothing more; how many searches the thread took."""
        with self._lock:
            self._waiting.clear()
            return self.taken_by_thread


def search_all(
    rt: Runtime, conn: Connection, searches: dict[Key, Search]
) -> dict[Key, list[search.Scored]]:
    """Every search's candidates, the work shared between the caller (on ``conn``) and a
    pooled thread (on a read transaction of its own) as described above."""
    if len(searches) < 2:
        return {key: run(conn) for key, run in searches.items()}
    line: _Line[Key] = _Line(list(searches))
    theirs: dict[Key, list[search.Scored]] = {}

    def elsewhere() -> None:
        with rt.store.read_each() as other:
            while (key := line.back()) is not None:
                theirs[key] = searches[key](other)

    future: Future[None] = _executor().submit(elsewhere)
    found: dict[Key, list[search.Scored]] = {}
    try:
        while (key := line.front()) is not None:
            found[key] = searches[key](conn)
    finally:
        taken = line.close()  # also when a search failed: the thread starts no other
    if future.cancel() or taken == 0:
        return found  # the thread did not start, or has taken nothing and now takes nothing
    future.result()  # the searches it took (an error there reaches the caller)
    return found | theirs
