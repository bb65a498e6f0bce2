"""A long chain verified on several cores: its rows split into one part per worker process.

Every row carries its predecessor's tag, so a part can be checked on its own: a worker starts
from the row just before its part (checking that row's own tag under the key, so the link into
the part is checked too) and walks to the part's last row. The chain holds when every part
holds. When one does not, the caller's connection walks again, serially, from the start of
the part before it: the report names the same first bad row, for the same reason, as a walk
of the whole chain on one core would.

Workers are fresh interpreters (``python -m memwarden.audit.verify_worker``): forking a
process that runs server threads could copy a lock one of them holds, and a fresh interpreter
loads only the walk. Should they fail to run, the walk runs here instead.
"""

from __future__ import annotations

import os
import pickle
import selectors
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import structlog
from sqlalchemy import Connection, func, select
from sqlalchemy.engine import URL

from memwarden import VERIFY_WORKER_OPTION
from memwarden.audit.verify_worker import DriverOpen, Job
from memwarden.audit.walk import Progress, Walk
from memwarden.audit.witness import Head
from memwarden.db import schema
from memwarden.db.engine import sqlite_path

log = structlog.get_logger(__name__)

# Below this many rows starting the workers costs more than it saves.
MIN_ROWS = 150_000
# A worker reports every few thousand rows (a fraction of a second): this long without a word
# from any of them, they are stuck, and the walk is done here instead.
WORKER_SILENCE_S = 120.0


class WorkerFailed(Exception):
    """A worker process did not finish its part (it could not start, or it crashed)."""


@dataclass(frozen=True)
class Part:
    first: int
    last: int


@dataclass
class PartResult:
    checked: int = 0
    finished: bool = False
    failed: bool = False
    last_tag: str | None = None


def run(walk: Walk, from_seq: int, progress: Progress | None, workers: int) -> Head:
    """Walk from ``from_seq`` to the end of the chain, on ``workers`` processes when the
    chain is long enough and the database can be opened from another process."""
    conn = walk.conn
    url = conn.engine.url
    if workers <= 1 or not _shareable(url):
        return walk.run(from_seq, progress)
    last_seq = func.coalesce(func.max(schema.ledger.c.seq), 0)
    end = int(conn.execute(select(last_seq)).scalar_one())
    if end - from_seq + 1 < MIN_ROWS:
        return walk.run(from_seq, progress)
    snapshot = None
    if conn.dialect.name == "postgresql" and not conn.in_nested_transaction():
        # The workers read the chain as this statement saw it, end included: one snapshot
        # for every part, so no part can see a version of the rows another did not. (Inside
        # a savepoint, as in an integrity scan, PostgreSQL exports none: each worker then
        # reads its own, as on SQLite.)
        snapshot, last = conn.execute(select(func.pg_export_snapshot(), last_seq)).one()
        end = int(last)
    parts = plan(from_seq, end, workers)
    try:
        results = _run_workers(url, driver_open(conn), walk, parts, progress, snapshot)
    except WorkerFailed as exc:
        log.warning("verify_workers_failed", error=str(exc), workers=len(parts))
        walk.checked = 0
        return walk.run(from_seq, progress)
    for index, result in enumerate(results):
        if result.failed:
            # Name the first failure exactly as a serial walk would, from a sound row. (Were
            # it gone from this connection's snapshot, the walk simply reaches the end.)
            restart = max(0, index - 1)
            walk.checked = sum(r.checked for r in results[:restart])
            return walk.run(parts[restart].first, progress)
    walk.checked = sum(r.checked for r in results)
    last_tag = results[-1].last_tag
    assert last_tag is not None
    return Head(end, last_tag)


def plan(from_seq: int, end: int, workers: int) -> list[Part]:
    """``workers`` contiguous parts of nearly equal size (rows cost about the same)."""
    total = end - from_seq + 1
    size, extra = divmod(total, workers)
    parts, first = [], from_seq
    for index in range(workers):
        last = first + size - 1 + (1 if index < extra else 0)
        if last >= first:
            parts.append(Part(first, last))
        first = last + 1
    return parts


def _shareable(url: URL) -> bool:
    """Another process can open the same database (not an in-memory SQLite one)."""
    return url.get_backend_name() != "sqlite" or sqlite_path(url) is not None


def driver_open(conn: Connection) -> DriverOpen:
    """How a worker opens the database: with the parent's own DB-API module (two SQLite
    libraries on one file can disagree on its format, an FTS5 index a newer one wrote, so a
    worker never falls back to whatever ``sqlite3`` Python links) and the arguments the URL
    gives it, as SQLAlchemy reads them."""
    dbapi = conn.dialect.dbapi
    if dbapi is None:
        raise WorkerFailed(f"no DB-API module for {conn.dialect.name}")
    args, kwargs = conn.dialect.create_connect_args(conn.engine.url)
    # psycopg: SQLAlchemy's own adapters (hstore, inet), which do not pickle; the ledger's
    # columns (numbers and text) load alike without them.
    kwargs.pop("context", None)
    return DriverOpen(conn.dialect.name, str(dbapi.__name__), tuple(args), dict(kwargs))


def _run_workers(
    url: URL,
    driver: DriverOpen,
    walk: Walk,
    parts: list[Part],
    progress: Progress | None,
    snapshot: str | None = None,
) -> list[PartResult]:
    package_root = str(Path(__file__).resolve().parents[2])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    # The option tells the package the worker sets up its logging itself, only if it logs.
    command = [sys.executable, "-X", VERIFY_WORKER_OPTION, "-m", "memwarden.audit.verify_worker"]
    address = url.render_as_string(hide_password=False)  # travels in the job, over a pipe
    processes: list[subprocess.Popen[bytes]] = []
    results = [PartResult() for _ in parts]
    errors: list[bytes] = [b"" for _ in parts]
    try:
        for part in parts:
            job = _pickled(
                Job(
                    address,
                    walk.key,
                    walk.marks,
                    part.first,
                    part.last,
                    walk.part_rows(part.first, part.last),
                    driver,
                    snapshot,
                )
            )
            try:
                process = subprocess.Popen(
                    command,
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    env=env,
                )
            except OSError as exc:
                raise WorkerFailed(f"cannot start a worker ({command[0]}): {exc}") from exc
            processes.append(process)
            assert process.stdin is not None
            try:
                process.stdin.write(job)
                process.stdin.close()
            except BrokenPipeError as exc:
                raise WorkerFailed(f"a worker exited before taking its job: {exc}") from exc
        _collect(processes, results, errors, progress)
        for index, process in enumerate(processes):
            code = process.wait()
            if code != 0 or not results[index].finished:
                detail = errors[index].decode("utf-8", "replace").strip().splitlines()
                raise WorkerFailed(
                    f"worker {index + 1} exited with status {code}: "
                    f"{detail[-1] if detail else 'no message'}"
                )
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
    return results


def _pickled(job: Job) -> bytes:
    """The job as its worker reads it; a job that cannot be sent (a connection argument that
    does not pickle) leaves the walk to this process, like a worker that cannot start."""
    try:
        return pickle.dumps(job)
    except (pickle.PicklingError, TypeError, AttributeError) as exc:
        raise WorkerFailed(f"the job cannot be sent to a worker: {exc}") from exc


def _collect(
    processes: list[subprocess.Popen[bytes]],
    results: list[PartResult],
    errors: list[bytes],
    progress: Progress | None,
) -> None:
    """Read every worker's output until all have closed it, reporting progress as it comes."""
    pending: dict[int, bytes] = {}
    with selectors.DefaultSelector() as selector:
        for index, process in enumerate(processes):
            assert process.stdout is not None and process.stderr is not None
            selector.register(process.stdout, selectors.EVENT_READ, (index, False))
            selector.register(process.stderr, selectors.EVENT_READ, (index, True))
        open_streams = 2 * len(processes)
        while open_streams:
            ready = selector.select(timeout=WORKER_SILENCE_S)
            if not ready:
                raise WorkerFailed(f"no word from the workers for {WORKER_SILENCE_S:.0f} s")
            for found, _ in ready:
                index, is_error = found.data
                chunk = os.read(found.fd, 65536)
                if not chunk:
                    selector.unregister(found.fileobj)
                    open_streams -= 1
                    continue
                if is_error:
                    errors[index] = (errors[index] + chunk)[-4096:]
                    continue
                buffered = pending.get(index, b"") + chunk
                *lines, pending[index] = buffered.split(b"\n")
                for line in lines:
                    try:
                        _read_line(line.decode("ascii"), results[index])
                    except (UnicodeDecodeError, ValueError, IndexError) as exc:
                        raise WorkerFailed(f"worker {index + 1} said {line[:80]!r}") from exc
                if progress is not None and lines:
                    progress(sum(r.checked for r in results))


def _read_line(line: str, result: PartResult) -> None:
    kind, _, rest = line.partition(" ")
    fields = rest.split()
    if kind == "progress":
        result.checked = int(fields[0])
    elif kind == "done":
        result.checked, result.last_tag, result.finished = int(fields[0]), fields[1], True
    elif kind == "failed":
        result.checked, result.failed, result.finished = int(fields[0]), True, True
    else:
        raise ValueError(f"unknown line {line!r}")
