"""A recall's other full-text searches on a second thread, while the caller runs its first.

A text recall searches each corpus (memories, chunks) in each scope. The searches are
independent and most of their time is spent in the database (SQLite's C code, or a
PostgreSQL backend), which releases the GIL: on a second thread they overlap. They run
there in a read transaction of their own, so in a snapshot that may be a moment apart from
the caller's. That is safe because candidates are only ids and scores: ``rank`` reads every
candidate's facts, filters and rows again in the caller's transaction, so nothing is served
from the other snapshot, and a candidate that is gone from the caller's is dropped.

When the pool's threads are busy with other recalls, the caller does not wait for one: a
search not yet started when the caller is done with its own is taken back and run inline.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

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


def search_all(
    rt: Runtime, conn: Connection, searches: dict[Key, Search]
) -> dict[Key, list[search.Scored]]:
    """Every search's candidates: the first on the caller's ``conn``, the others meanwhile on
    a pooled thread in a read transaction of its own (inline if no thread took them)."""
    keys = list(searches)
    if len(keys) < 2:
        return {key: searches[key](conn) for key in keys}
    rest = keys[1:]

    def elsewhere() -> dict[Key, list[search.Scored]]:
        with rt.read() as other:
            return {key: searches[key](other) for key in rest}

    future = _executor().submit(elsewhere)
    found = {keys[0]: searches[keys[0]](conn)}
    if future.cancel():  # no thread was free: no point waiting for one
        found.update({key: searches[key](conn) for key in rest})
    else:
        found.update(future.result())
    return found
