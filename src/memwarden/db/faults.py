"""Faults of the machine under the database, named: disk full, read-only files, a lock held
too long, the database server gone. Each becomes a ``StorageUnavailableError`` (one clear
line; HTTP 503, with ``Retry-After`` where waiting helps) and is told to the listener the
domain installs (``core/storage_faults.py``: a fault episode, one critical alert when it
starts, a resolved notice when a later operation succeeds, shown in ``/health`` and
``memwarden doctor``). Storage knows no alerts: it only names the fault."""

from __future__ import annotations

import errno
from collections.abc import Callable
from dataclasses import dataclass

from memwarden.errors import StorageError

PREFIX = "storage:"


@dataclass(frozen=True)
class Kind:
    key: str
    title: str
    advice: str
    retry_after: int | None  # seconds a client may wait before trying again; None: no use
    severity: str = "critical"  # of its alert


DISK_FULL = Kind(
    "disk_full",
    "database disk full",
    "free space on the database's disk; nothing was written",
    None,
)
READ_ONLY = Kind(
    "read_only",
    "database is read-only",
    "the database file or its folder cannot be written (permissions, a read-only mount); "
    "nothing was written",
    None,
)
LOCKED = Kind(
    "locked",
    "database locked too long",
    "another process held the database's write lock past the busy timeout; retry",
    5,
)
UNREACHABLE = Kind(
    "unreachable",
    "database unreachable",
    "the database server cannot be reached or is restarting; retry",
    5,
)
BUSY = Kind(
    "busy",
    "database busy",
    "a statement was cancelled (a lock or statement timeout, or an operator's cancel); retry",
    5,
)
DAMAGED = Kind(
    "damaged",
    "database schema damaged",
    "a table or column memwarden needs is missing or was changed outside it (run `memwarden "
    "doctor`); nothing was written",
    None,
)
# Over when a write succeeds (``healthy``'s default): each is a fault a write would meet.
# Not DAMAGED: a write that succeeds may touch none of the missing tables (the store checks
# the schema whole before it ends that one, ``Store._recheck_damage``), nor CHECKPOINT.
KINDS = (DISK_FULL, READ_ONLY, LOCKED, UNREACHABLE, BUSY)
# SQLite's write-ahead log not folded into the database file (``db/checkpointer.py``): writes
# go on meanwhile, so only a checkpoint that succeeds ends it.
CHECKPOINT = Kind(
    "checkpoint",
    "database checkpoint failing",
    "SQLite cannot fold its write-ahead log into the database file (a full disk, an I/O "
    "error); writes still commit, but the log grows until a checkpoint succeeds",
    None,
)
# The checkpoints run, but a reader's snapshot holds most of the log back for long: the log
# file grows until that read ends (``db/checkpointer.py``). A warning: nothing fails yet.
CHECKPOINT_HELD = Kind(
    "checkpoint_held",
    "database log held back by a reader",
    "a transaction that has been reading for long (a long scan or verify, or a process left "
    "inside a read) keeps SQLite from folding its write-ahead log into the database file; "
    "writes still commit, but the log file grows until that read ends",
    None,
    "warning",
)

# Lower-cased fragments of the drivers' messages (SQLite's and PostgreSQL's), per kind.
_SIGNS: tuple[tuple[Kind, tuple[str, ...]], ...] = (
    (DISK_FULL, ("database or disk is full", "no space left on device", "disk full")),
    (
        READ_ONLY,
        ("attempt to write a readonly database", "read-only file system", "readonly database"),
    ),
    (LOCKED, ("database is locked", "database table is locked")),
    (
        BUSY,
        (
            "canceling statement due to lock timeout",
            "canceling statement due to statement timeout",
            "canceling statement due to user request",
            "lock not available",
        ),
    ),
    (
        DAMAGED,
        (
            "no such table",  # SQLite's; PostgreSQL's by SQLSTATE (``classify_error``)
            "no such column",
        ),
    ),
    (
        UNREACHABLE,
        (
            "connection refused",
            "could not connect",
            "server closed the connection",
            "terminating connection due to administrator command",
            "the database system is shutting down",
            "the database system is starting up",
            "the database system is in recovery mode",
            "connection is closed",
            "consuming input failed",
            "connection timeout expired",
            "connection failed",
            # psycopg's own, when the socket went away under a statement or its rollback
            "the connection is lost",
            "connection socket closed",
            # libpq's, for a server that went away mid-conversation
            "could not receive data from server",
            "could not send data to server",
            "no connection to the server",
            "ssl connection has been closed unexpectedly",
            "terminating connection because of crash of another server process",
        ),
    ),
)
_ERRNOS = {errno.ENOSPC: DISK_FULL, errno.EROFS: READ_ONLY, errno.EACCES: READ_ONLY}


class StorageUnavailableError(StorageError):
    """The database cannot be used for now, for a reason of the machine's."""

    code = "storage_unavailable"

    def __init__(self, kind: Kind, detail: str) -> None:
        self.kind = kind
        self.retry_after = kind.retry_after
        super().__init__(f"{kind.title}: {kind.advice} ({detail})")


def classify(message: str) -> Kind | None:
    lowered = message.lower()
    for kind, signs in _SIGNS:
        if any(sign in lowered for sign in signs):
            return kind
    return None


# PostgreSQL's SQLSTATEs whose messages name no kind: undefined table, undefined column.
_SQLSTATES = {"42P01": DAMAGED, "42703": DAMAGED}


def classify_error(error: BaseException) -> Kind | None:
    """The kind of a driver's error (or of SQLAlchemy's wrapping of one): by its SQLSTATE
    where it has one that names a kind, otherwise by its message (``classify``)."""
    orig = getattr(error, "orig", None)
    if orig is not None:
        error = orig
    kind = _SQLSTATES.get(str(getattr(error, "sqlstate", "") or ""))
    return kind if kind is not None else classify(str(error))


def classify_os(error: OSError) -> Kind | None:
    return _ERRNOS.get(error.errno or 0)


OnFault = Callable[[Kind, str, str], None]
OnHealthy = Callable[[tuple[Kind, ...]], None]
_listeners: list[tuple[OnFault, OnHealthy]] = []


def listen(on_fault: OnFault, on_healthy: OnHealthy) -> None:
    """Be told of every fault (kind, detail, database) and of every operation that succeeded
    (the kinds it proves over). Listeners must never raise."""
    if (on_fault, on_healthy) not in _listeners:
        _listeners.append((on_fault, on_healthy))


def fault(kind: Kind, detail: str, where: str) -> StorageUnavailableError:
    """Tell the listeners and return the error to raise."""
    for on_fault, _ in _listeners:
        on_fault(kind, detail, where)
    return StorageUnavailableError(kind, detail)


def healthy(kinds: tuple[Kind, ...] = KINDS) -> None:
    for _, on_healthy in _listeners:
        on_healthy(kinds)
