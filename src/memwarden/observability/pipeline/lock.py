"""The run lock: two nightly runs on one database never overlap.

PostgreSQL: ``pg_try_advisory_lock`` on a key of memwarden's nightly class and this database's
id (so two memwarden databases sharing a PostgreSQL database do not block each other), held by
a session of its own in autocommit (no transaction stays open for the whole run). A process
that dies loses its session, and with it the lock.

SQLite: one row in ``nightly_lock`` (owner, host, pid, started, heartbeat), inserted in a
write transaction (``BEGIN IMMEDIATE``: two processes cannot both find it free). A row is
taken over only when its holder is dead: a process of this host that no longer exists, or a
heartbeat older than ``MEMWARDEN_NIGHTLY_LOCK_STALE_MINUTES`` (a holder on another host, whose
process cannot be probed, or a process id reused since). The holder beats every minute while
it holds the lock, however long a step takes.
"""

from __future__ import annotations

import os
import socket
import threading
import uuid
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import Connection, delete, insert, select, text, update
from sqlalchemy.exc import SQLAlchemyError

from memwarden.db import schema
from memwarden.db.store import Store
from memwarden.errors import ConflictError, first_line
from memwarden.observability.pipeline import records
from memwarden.observability.processes import alive

log = structlog.get_logger("memwarden.nightly")

L = schema.nightly_lock
LOCK_NAME = "nightly"
NIGHTLY_LOCK_CLASS = 0x6E676874  # "nght": memwarden's nightly runs among the advisory locks
_TRY_LOCK = text("SELECT pg_try_advisory_lock(:lock_class, :key)")
_UNLOCK = text("SELECT pg_advisory_unlock(:lock_class, :key)")
# Whether this session still holds it (a two-key advisory lock shows its keys as oids).
_HELD = text(
    "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted "
    "AND pid = pg_backend_pid() AND objsubid = 2 "
    "AND classid::bigint = :class_oid AND objid::bigint = :key_oid)"
)
BEAT_EVERY_S = 60.0


class RunInProgressError(ConflictError):
    """Another nightly run holds the lock."""

    code = "run_in_progress"


class RunLockLostError(ConflictError):
    """The run no longer holds its lock (its PostgreSQL session ended, or its SQLite row was
    taken over): another run may start beside it, so it must stop."""

    code = "run_lock_lost"


@dataclass
class RunLease:
    """The held lock: ``owner`` names it; ``heartbeat()`` says the holder is still alive."""

    owner: str
    beat: Callable[[], None]

    def heartbeat(self) -> None:
        self.beat()


def process_label() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def pg_lock_key(database_id: str) -> int:
    """This database's key in the nightly class: a signed 32-bit number, as PostgreSQL wants."""
    key = zlib.crc32(database_id.encode("utf-8"))
    return key - 2**32 if key >= 2**31 else key


@contextmanager
def hold(store: Store, database_id: str, *, stale_after: timedelta) -> Iterator[RunLease]:
    """Hold the run lock for the block; ``RunInProgressError`` when another run has it."""
    owner = f"{process_label()}:{uuid.uuid4().hex[:8]}"
    if store.is_sqlite:
        with _sqlite_lock(store, owner, stale_after) as lease:
            yield lease
    else:
        with _pg_lock(store, owner, pg_lock_key(database_id)) as lease:
            yield lease


# -- PostgreSQL -------------------------------------------------------------------------------
@contextmanager
def _pg_lock(store: Store, owner: str, key: int) -> Iterator[RunLease]:
    params = {"lock_class": NIGHTLY_LOCK_CLASS, "key": key}
    conn = store.connect().execution_options(isolation_level="AUTOCOMMIT")
    try:
        taken = bool(conn.execute(_TRY_LOCK, params).scalar_one())
    except BaseException:
        conn.close()
        raise
    if not taken:
        conn.close()
        with store.read() as reader:
            current = records.running(reader)
        holder = (
            f"run {current.id} by {current.owner}, started {_when(current.started_at)}"
            if current is not None
            else "another session holds the lock"
        )
        raise RunInProgressError(f"another nightly run is in progress ({holder})")
    try:
        yield RunLease(owner, lambda: _pg_beat(conn, params))
    finally:
        _pg_unlock(conn, params)


def _pg_beat(conn: Connection, params: dict[str, int]) -> None:
    """The lock's session is alive and still holds it, or ``RunLockLostError``: a session the
    server ended (a restart, ``pg_terminate_backend``, an idle timeout) let go of the lock
    without a word, and a second run could start beside this one."""
    oids = {
        "class_oid": params["lock_class"] & 0xFFFFFFFF,
        "key_oid": params["key"] & 0xFFFFFFFF,
    }
    try:
        held = bool(conn.execute(_HELD, oids).scalar_one())
    except SQLAlchemyError as exc:
        raise RunLockLostError(
            f"the nightly run's lock session is gone ({first_line(exc)}): another run could start "
            "beside it, so this one stops"
        ) from exc
    if not held:
        raise RunLockLostError(
            "the nightly run no longer holds its lock: another run could start beside it, "
            "so this one stops"
        )


def _pg_unlock(conn: Connection, params: dict[str, int]) -> None:
    try:
        conn.execute(_UNLOCK, params)
    except Exception as exc:  # noqa: BLE001 - the session must not go back to the pool locked
        log.error("nightly_unlock_failed", error=str(exc).splitlines()[0] if str(exc) else "")
        conn.invalidate()  # closing the session releases the lock
    finally:
        conn.close()


# The SQLite lock rows this process holds, by owner: a row of this process's that is not here
# was left by a run whose store closed under it, and is free.
_held: set[str] = set()


# -- SQLite -----------------------------------------------------------------------------------
@contextmanager
def _sqlite_lock(store: Store, owner: str, stale_after: timedelta) -> Iterator[RunLease]:
    # Held from before the row is written: another thread of this process that reads the row
    # meanwhile must not take it for one a closed run left.
    _held.add(owner)
    try:
        _sqlite_take(store, owner, stale_after)
    except BaseException:
        _held.discard(owner)
        raise
    # A thread beats while the lock is held, so one long step (a big extraction backlog) never
    # looks like a dead holder; a holder that really died stops beating.
    stop = threading.Event()
    interval = max(0.05, min(BEAT_EVERY_S, stale_after.total_seconds() / 4))
    beater = threading.Thread(
        target=_keep_beating,
        args=(store, owner, stop, interval),
        name="memwarden-nightly-heartbeat",
        daemon=True,
    )
    beater.start()
    try:
        yield RunLease(owner, lambda: _sqlite_beat(store, owner))
    finally:
        _held.discard(owner)  # the row may outlive this (a store closed under the run)
        stop.set()
        beater.join(5.0)
        with store.write() as unit:
            unit.conn.execute(delete(L).where(L.c.name == LOCK_NAME, L.c.owner == owner))


def _keep_beating(store: Store, owner: str, stop: threading.Event, interval: float) -> None:
    while not stop.wait(interval):
        try:
            _sqlite_beat(store, owner)
        except RunLockLostError:
            # Said by the run's own beat between its steps, which stops the run.
            log.error("nightly_lock_lost", owner=owner)
            return
        except Exception as exc:  # noqa: BLE001 - a missed beat is retried; the run goes on
            log.error(
                "nightly_heartbeat_failed", error=str(exc).splitlines()[0] if str(exc) else ""
            )


def _sqlite_take(store: Store, owner: str, stale_after: timedelta) -> None:
    host, pid = socket.gethostname(), os.getpid()
    with store.write() as unit:
        now = datetime.now(UTC)
        row = unit.conn.execute(select(L).where(L.c.name == LOCK_NAME)).first()
        values = {
            "owner": owner,
            "host": host[:255],
            "pid": pid,
            "started_at": now,
            "heartbeat_at": now,
        }
        if row is None:
            unit.conn.execute(insert(L), {"name": LOCK_NAME, **values})
            return
        why = _abandoned(row, now, stale_after)
        if why is None:
            raise RunInProgressError(
                f"another nightly run is in progress (pid {row.pid} on {row.host}, started "
                f"{_when(row.started_at)}, last heartbeat {_when(row.heartbeat_at)})"
            )
        log.warning("nightly_lock_taken_over", previous=row.owner, reason=why)
        unit.conn.execute(update(L).where(L.c.name == LOCK_NAME).values(**values))


def _abandoned(row: Any, now: datetime, stale_after: timedelta) -> str | None:
    """Why the lock's holder counts as gone, or None while it may still be running."""
    if row.host == socket.gethostname():
        if not alive(int(row.pid)):  # on Windows, unknown: the heartbeat decides
            return f"process {row.pid} no longer exists"
        if int(row.pid) == os.getpid() and row.owner not in _held:
            return "a run of this process ended without releasing it (its store was closed)"
    if now - row.heartbeat_at > stale_after:
        return f"no heartbeat since {_when(row.heartbeat_at)}"
    return None


def _sqlite_beat(store: Store, owner: str) -> None:
    with store.write() as unit:
        kept = unit.conn.execute(
            update(L)
            .where(L.c.name == LOCK_NAME, L.c.owner == owner)
            .values(heartbeat_at=datetime.now(UTC))
        ).rowcount
    if not kept:
        raise RunLockLostError(
            "the nightly run's lock was taken over by another run (its heartbeat looked "
            "stale): this one stops"
        )


def _when(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
