"""One worker of a parallel verify: ``python -m memwarden.audit.verify_worker``.

It reads its job (the database URL, the ledger key, the marks, the rows to walk and their
query, compiled by the parent) pickled on standard input from the process that started it,
walks those rows in one read transaction and writes one line per batch to standard output:
``progress N`` as it goes, then ``done CHECKED LAST_TAG`` or ``failed CHECKED``. Why a segment
failed is not its to say: the parent walks again from a sound row to name the first failure
exactly.

A worker's start is part of the verify's time: it loads only the fast path (``fastpath``),
the fetch and the key. At the first row the fast path does not accept, it loads the full walk
(``walk.Walk``) and hands it the rest of its part, on the same transaction.
"""

from __future__ import annotations

import importlib
import pickle
import re
import sys
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, create_engine
from sqlalchemy.pool import NullPool

from memwarden.audit.chain import GENESIS_TAG, ChainKey
from memwarden.audit.fastpath import BATCH, PROGRESS_ROWS, accept, collector_paused, tagged
from memwarden.audit.fetch import DriverQuery, driver_batches
from memwarden.audit.marks import Marks

# What pg_export_snapshot() returns (hex groups and dashes): written into a statement, since
# SET TRANSACTION SNAPSHOT takes no parameter.
_SNAPSHOT_ID = re.compile(r"[0-9A-Fa-f-]{1,64}")
# SQLite: how much of the file a worker maps (the library caps it at its own maximum).
MMAP_BYTES = 1 << 40


@dataclass(frozen=True)
class Job:
    url: str
    key: ChainKey
    marks: Marks
    first: int
    last: int
    rows: DriverQuery  # the fast query from ``first - 1`` (when there is such a row) to ``last``
    dbapi: str | None = None  # SQLite: the parent's DB-API module (sqlean.dbapi2 or sqlite3)
    snapshot: str | None = None  # PostgreSQL: the parent's exported snapshot, read by every part


@dataclass(frozen=True)
class Outcome:
    checked: int
    last_tag: str | None  # None: the part does not verify


def main() -> int:
    job: Job = pickle.load(sys.stdin.buffer)  # from the parent's pipe, never from a file
    out = sys.stdout

    def progress(checked: int) -> None:
        out.write(f"progress {checked}\n")
        out.flush()

    options: dict[str, Any] = {}
    if job.dbapi is not None:
        options["module"] = importlib.import_module(job.dbapi)
    engine = create_engine(job.url, poolclass=NullPool, **options)
    try:
        with engine.connect() as conn, conn.begin():
            if conn.dialect.name == "sqlite":
                # Pages read through a memory map, not copied in by a read() each: 2-18% less
                # CPU a row in three alternated runs (docs/scaling.md). In a worker only: should the file shrink under the map (a
                # truncation), the worker dies of SIGBUS and the parent walks instead; a
                # server process must not run that risk.
                conn.exec_driver_sql(f"PRAGMA mmap_size={MMAP_BYTES}")
                # The driver would run each query on its own; one snapshot for the whole part.
                conn.exec_driver_sql("BEGIN")
            elif job.snapshot is not None:
                # The parent's snapshot, which every part reads (the parent holds it open).
                if not _SNAPSHOT_ID.fullmatch(job.snapshot):
                    raise ValueError(f"not a snapshot id: {job.snapshot!r}")
                conn.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                conn.exec_driver_sql(f"SET TRANSACTION SNAPSHOT '{job.snapshot}'")
            outcome = walk_part(conn, job, progress)
        if outcome.last_tag is None:
            out.write(f"failed {outcome.checked}\n")
        else:
            out.write(f"done {outcome.checked} {outcome.last_tag}\n")
    finally:
        engine.dispose()
    out.flush()
    return 0


def walk_part(conn: Connection, job: Job, progress: Callable[[int], None]) -> Outcome:
    """The part's rows on the fast path while it accepts them, then, from the first row it
    does not, the full walk (which accepts the row or fails the part)."""
    inner, outer = job.key.hmac_states()
    expected = job.first
    # The row before the part links it in; only its own tag is checked (as ``Walk._start``).
    prev = GENESIS_TAG.encode("ascii") if job.first == 1 else None
    reported = 0
    with closing(driver_batches(conn, job.rows, BATCH)) as batches, collector_paused():
        for batch in batches:
            done = 0
            if prev is None:
                first_row = batch[0]
                if first_row[0] != job.first - 1 or not tagged(first_row, job.key):
                    break
                prev, done = first_row[2], 1
            before = expected
            expected, prev = accept(batch[done:] if done else batch, inner, outer, expected, prev)
            if expected - before < len(batch) - done:
                break
            if expected - job.first - reported >= PROGRESS_ROWS:
                reported = expected - job.first
                progress(reported)
    if prev is not None and expected > job.last:
        if expected - job.first != reported:
            progress(expected - job.first)
        return Outcome(expected - job.first, prev.decode("ascii"))
    return _full_walk(conn, job, expected, progress)


def _full_walk(conn: Connection, job: Job, start: int, progress: Callable[[int], None]) -> Outcome:
    """The rest of the part, from ``start``, on the full walk (loaded only now)."""
    from memwarden.audit.diagnose import ChainBroken
    from memwarden.audit.walk import Walk

    accepted = start - job.first
    walk = Walk(conn, job.key, job.marks)
    try:
        last = walk.run(start, lambda checked: progress(accepted + checked), until=job.last)
    except ChainBroken:
        return Outcome(accepted + walk.checked, None)
    return Outcome(accepted + walk.checked, last.tag)


if __name__ == "__main__":
    sys.exit(main())
