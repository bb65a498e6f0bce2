"""One worker of a parallel verify: ``python -m memwarden.audit.verify_worker``.

It reads its job (the database URL, the ledger key, the marks, the rows to walk and their
query, compiled by the parent) pickled on standard input from the process that started it,
walks those rows in one read transaction and writes one line per batch to standard output:
``progress N`` as it goes, then ``done CHECKED LAST_TAG`` or ``failed CHECKED``. Why a segment
failed is not its to say: the parent walks again from a sound row to name the first failure
exactly.

A worker's start is part of the verify's time: it loads only the fast path (``fastpath``),
the fetch and the key; it opens the database with the DB-API module itself, without
SQLAlchemy, and the package skips its logging setup (``memwarden.VERIFY_WORKER_OPTION``). At
the first row the fast path does not accept, it loads the full walk (``walk.Walk``) and hands
it the rest of its part, on the same transaction.
"""

from __future__ import annotations

import importlib
import pickle
import re
import sys
from collections.abc import Callable, Generator, Iterator
from contextlib import closing
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from memwarden.audit.chain import GENESIS_TAG, ChainKey
from memwarden.audit.fastpath import BATCH, PROGRESS_ROWS, accept, collector_paused, tagged
from memwarden.audit.fetch import DriverQuery, cursor_batches
from memwarden.audit.marks import Marks

if TYPE_CHECKING:
    from sqlalchemy import Connection

# What pg_export_snapshot() returns (hex groups and dashes): written into a statement, since
# SET TRANSACTION SNAPSHOT takes no parameter.
_SNAPSHOT_ID = re.compile(r"[0-9A-Fa-f-]{1,64}")
# SQLite: how much of the file a worker maps (the library caps it at its own maximum).
MMAP_BYTES = 1 << 40

Progress = Callable[[int], None]


@dataclass(frozen=True)
class DriverOpen:
    """How a worker opens the database itself, without SQLAlchemy (loading it was half of a
    worker's start): the parent's own DB-API module (SQLite: sqlean.dbapi2 or sqlite3, since
    two libraries on one file can disagree on its format; PostgreSQL: psycopg) and the
    arguments SQLAlchemy's dialect gives it for the store's URL (``create_connect_args``). The
    store's own ``connect_args`` (SQLite's busy timeout) are not among them: a SQLite reader
    in WAL mode does not wait for writers, and the library's default timeout covers the brief
    locks it can meet."""

    kind: str  # the engine: "sqlite" or "postgresql"
    module: str
    args: tuple[Any, ...] = field(repr=False)  # a password may be among them
    kwargs: dict[str, Any] = field(default_factory=dict, repr=False)

    def dbapi(self) -> Any:
        return importlib.import_module(self.module)

    def connect(self) -> Any:
        return self.dbapi().connect(*self.args, **self.kwargs)


@dataclass(frozen=True)
class Job:
    url: str
    key: ChainKey
    marks: Marks
    first: int
    last: int
    rows: DriverQuery  # the fast query from ``first - 1`` (when there is such a row) to ``last``
    driver: DriverOpen
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

    outcome = walk_job(job, progress)
    if outcome.last_tag is None:
        out.write(f"failed {outcome.checked}\n")
    else:
        out.write(f"done {outcome.checked} {outcome.last_tag}\n")
    out.flush()
    return 0


def walk_job(job: Job, progress: Progress) -> Outcome:
    """The job's part, in one read transaction on a connection of the worker's own."""
    driver = job.driver.connect()
    try:
        _begin(driver, job)
        return _walk_part(
            cursor_batches(driver, job.driver.kind, job.rows, BATCH, stream=True),
            job,
            progress,
            lambda start: _full_walk_on(driver, job, start, progress),
        )
    finally:
        driver.close()


def _begin(driver: Any, job: Job) -> None:
    """Open the part's one read transaction: every row of the part, the full walk's reads
    included, is read in the same snapshot."""
    if job.driver.kind == "sqlite":
        # Pages read through a memory map, not copied in by a read() each: 2-18% less CPU a
        # row in three alternated runs (docs/scaling.md). In a worker only: should the file
        # shrink under the map (a truncation), the worker dies of SIGBUS and the parent walks
        # instead; a server process must not run that risk.
        driver.execute(f"PRAGMA mmap_size={MMAP_BYTES}")
        # The driver would run each query on its own.
        driver.execute("BEGIN")
        return
    # psycopg opens the transaction at its first statement: one snapshot for all of it, the
    # parent's when it exported one (the parent holds it open).
    driver.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
    if job.snapshot is not None:
        if not _SNAPSHOT_ID.fullmatch(job.snapshot):
            raise ValueError(f"not a snapshot id: {job.snapshot!r}")
        driver.execute(f"SET TRANSACTION SNAPSHOT '{job.snapshot}'")


def _full_walk_on(driver: Any, job: Job, start: int, progress: Progress) -> Outcome:
    """The full walk on ``driver``, inside the part's open transaction, through an engine made
    now (SQLAlchemy is loaded only now). SQLAlchemy reads the dialect's settings on the first
    connection an engine opens and then rolls that connection back: on ``driver`` that would
    end the part's transaction, and the full walk would read other snapshots. So the first
    connection is one of its own, opened and closed here."""
    from sqlalchemy import create_engine
    from sqlalchemy.pool import NullPool

    first = [job.driver.connect()]
    engine = create_engine(
        job.url,
        module=job.driver.dbapi(),
        poolclass=NullPool,
        creator=lambda: first.pop() if first else driver,
    )
    try:
        with engine.connect():  # the first connection: read, rolled back, closed
            pass
        with engine.connect() as conn:
            return _full_walk(conn, job, start, progress)
    finally:
        engine.dispose()


def _walk_part(
    batches: Generator[list[Any], None, None],
    job: Job,
    progress: Progress,
    full_walk: Callable[[int], Outcome],
) -> Outcome:
    """The part on the fast path, then, from the first row it does not accept, on
    ``full_walk`` (after ``batches`` is closed: the connection is the full walk's alone)."""
    with closing(batches):
        start, prev = fast_part(batches, job, progress)
    if prev is not None and start > job.last:
        return Outcome(start - job.first, prev.decode("ascii"))
    return full_walk(start)


def fast_part(
    batches: Iterator[list[Any]], job: Job, progress: Progress
) -> tuple[int, bytes | None]:
    """The part's rows on the fast path while it accepts them: the next row to check and the
    last accepted tag (None when the row before the part was not accepted). The part is done
    when that row is past its end; otherwise the full walk goes on from it, and accepts the
    row or fails the part."""
    inner, outer = job.key.hmac_states()
    expected = job.first
    # The row before the part links it in; only its own tag is checked (as ``Walk._start``).
    prev = GENESIS_TAG.encode("ascii") if job.first == 1 else None
    reported = 0
    with collector_paused():
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
    if prev is not None and expected > job.last and expected - job.first != reported:
        progress(expected - job.first)
    return expected, prev


def _full_walk(conn: Connection, job: Job, start: int, progress: Progress) -> Outcome:
    """The rest of the part, from ``start``, on the full walk (loaded only now)."""
    # Before any module that logs: structlog's own default would print on stdout, which is
    # this process's answer to its parent (``memwarden/__init__`` left it to this point).
    from memwarden.observability.logs import library_default

    library_default()
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
