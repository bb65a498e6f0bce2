"""The store: owns the engine, hands out read connections and write transactions."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from sqlalchemy import Connection, Engine, select
from sqlalchemy.exc import DatabaseError, OperationalError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from memwarden.config import Settings
from memwarden.db import faults, schema
from memwarden.db.checkpointer import Checkpointer
from memwarden.db.engine import make_engine, sqlite_path
from memwarden.db.structure import missing_parts
from memwarden.errors import ClosedError, StorageError

# At most one check of the whole schema this often while it is known damaged.
DAMAGE_RECHECK_S = 1.0


@dataclass
class WriteUnit:
    """One write transaction: its connection and the hooks that run around its commit."""

    conn: Connection
    before_commit: list[Callable[[Connection], None]] = field(default_factory=list)
    after_commit: list[Callable[[], None]] = field(default_factory=list)
    # Run when the transaction ends without committing (an error, a refusal); must not raise.
    on_abort: list[Callable[[], None]] = field(default_factory=list)


class Store:
    """Connections and transactions for one database. Knows tables, not rules."""

    def __init__(self, settings: Settings, engine: Engine | None = None) -> None:
        self.settings = settings
        self.engine = engine or make_engine(settings)
        self.dialect = self.engine.dialect.name
        # Rendered once: every transaction names the database for its error messages, and
        # rendering the URL (quoting each part) cost more than a small write's own SQL.
        self._where = self.engine.url.render_as_string(hide_password=True)
        self._closed = False
        path = sqlite_path(self._where) if self.is_sqlite else None
        # SQLite files: checkpoints on a thread of their own (``db/checkpointer.py``).
        self.checkpointer = (
            Checkpointer(path, self.engine.dialect.loaded_dbapi, self._where)
            if path is not None
            else None
        )
        # A table or column was found missing (DAMAGED): ended only once the schema is whole.
        self._damaged = False
        self._damage_checked = float("-inf")

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    @property
    def where(self) -> str:
        """The database, for messages (no password)."""
        return self._where

    @property
    def closed(self) -> bool:
        return self._closed

    def _refuse_if_closed(self) -> None:
        # Before any connection is asked for: the engine would otherwise open a new pool, and
        # a write after ``close`` would commit while the parts closed beside the store (the
        # operation log, the read log) dropped their records of it without a word.
        if self._closed:
            raise ClosedError()

    def connect(self) -> Connection:
        """A connection of the engine's own, no transaction begun (for a caller that manages
        its transactions itself); refused once the store is closed."""
        self._refuse_if_closed()
        return self.engine.connect()

    @contextmanager
    def faults_named(self) -> Iterator[None]:
        """The driver's errors in the block as ``read`` and ``write`` name them (a lost server
        is "database unreachable", with its alert): for a caller of ``connect``."""
        try:
            with _storage_errors(self.where):
                yield
        except faults.StorageUnavailableError as exc:
            if exc.kind is faults.DAMAGED:
                self._damaged = True
            raise

    @contextmanager
    def _connected(self) -> Iterator[Connection]:
        """A connection for ``read``, ``read_each`` and ``write``: refused once closed, its
        driver's errors named as storage faults."""
        self._refuse_if_closed()
        try:
            with self.faults_named(), self.engine.connect() as conn:
                yield conn
        finally:
            if self._closed:
                # A call that passed the check just before ``close`` connected to the pool
                # the close left: let go of that connection too.
                self.engine.dispose()

    @contextmanager
    def read(self) -> Iterator[Connection]:
        with self._connected() as conn, conn.begin():
            yield conn
        # A read succeeded: the server is reachable and the lock was had.
        faults.healthy((faults.UNREACHABLE,))

    @contextmanager
    def read_each(self) -> Iterator[Connection]:
        """A read whose statements need not share one snapshot. On PostgreSQL they run
        outside a transaction: under READ COMMITTED (PostgreSQL's default, and memwarden's)
        each statement has a snapshot of its own inside a transaction too, so only BEGIN and
        COMMIT's two round trips go (an API key's lookup on every request; a recall, whose
        candidates are filtered and MAC-checked row by row as they are read). On SQLite a
        transaction is what holds one WAL snapshot for all its statements, and costs no round
        trip: ``read`` there."""
        if self.is_sqlite:
            with self.read() as conn:
                yield conn
            return
        with self._connected() as conn:
            yield conn.execution_options(isolation_level="AUTOCOMMIT")
        faults.healthy((faults.UNREACHABLE,))

    @contextmanager
    def write(self) -> Iterator[WriteUnit]:
        """One transaction. Hooks registered on the unit run just before and after the commit.
        (SQLite zeroes freed bytes on every connection: engine.py, ``secure_delete``.)"""
        with self._connected() as conn:
            conn = conn.execution_options(memwarden_write=True)
            unit = WriteUnit(conn)
            try:
                with conn.begin():
                    yield unit
                    for hook in unit.before_commit:
                        hook(conn)
            except BaseException:
                for abort in unit.on_abort:
                    abort()
                raise
        if self.checkpointer is not None:
            self.checkpointer.committed()
        faults.healthy()  # a write committed: whatever fault of the machine there was is over
        if self._damaged:
            self._recheck_damage()
        for after in unit.after_commit:
            after()

    def _recheck_damage(self) -> None:
        """After a write that committed while a table or column was known missing: whether
        the schema is whole again (one catalog query, ~2 ms on SQLite, ~12 ms on PostgreSQL;
        at most once every ``DAMAGE_RECHECK_S``), and if so the fault is over. A write that
        touched only tables still there proves nothing: "schema damaged" ended with it, and
        came back with the next call that needed the missing table (an alert each time)."""
        now = time.monotonic()
        if now - self._damage_checked < DAMAGE_RECHECK_S:
            return
        self._damage_checked = now
        try:
            with self.engine.connect() as conn:
                missing = missing_parts(conn)
        except SQLAlchemyError:
            return  # not known whole: the fault stays
        if not missing:
            self._damaged = False
            faults.healthy((faults.DAMAGED,))

    def meta_value(self, key: str) -> str | None:
        with self.read() as conn:
            return conn.execute(
                select(schema.meta.c.value).where(schema.meta.c.key == key)
            ).scalar_one_or_none()

    def dispose(self) -> None:
        """Let go of the pool's connections (the store stays open: the next use connects)."""
        self.engine.dispose()

    def close(self) -> None:
        """Close the store: every later ``read``, ``read_each``, ``write`` or ``connect``
        raises ``ClosedError``, and the pool lets go of its connections. A transaction already
        under way ends on its own connection."""
        self._closed = True
        if self.checkpointer is not None:
            self.checkpointer.close()
        self.engine.dispose()


def _read_only(where: str) -> bool:
    """Whether a SQLite database that would not open sits in a folder (or is a file) that
    cannot be written: a read-only mount, say (WAL mode needs to write beside the file)."""
    path = sqlite_path(where)
    if path is None:
        return False
    folder_writable = os.access(path.parent, os.W_OK)
    return not folder_writable or (path.exists() and not os.access(path, os.W_OK))


@contextmanager
def _storage_errors(where: str) -> Iterator[None]:
    try:
        yield
    except PoolTimeoutError as exc:
        # Every connection of the pool in use past its wait (statements held up by a lock,
        # say): the server is busy, not the caller wrong; before, a 500.
        raise faults.fault(faults.BUSY, "every database connection is in use", where) from exc
    except OperationalError as exc:
        message = str(exc.orig) if exc.orig is not None else str(exc)
        if "file is not a database" in message:
            raise StorageError("the database file is not a SQLite database") from exc
        kind = faults.classify_error(exc)
        if kind is not None:
            raise faults.fault(kind, message.splitlines()[0], where) from exc
        if "unable to open database file" in message and _read_only(where):
            raise faults.fault(faults.READ_ONLY, message.splitlines()[0], where) from exc
        if "unable to open database file" in message:
            raise StorageError(
                "cannot open the database file (check the path and permissions)"
            ) from exc
        raise
    except DatabaseError as exc:
        message = str(exc.orig) if exc.orig is not None else str(exc)
        if "file is not a database" in message:
            raise StorageError("the database file is not a SQLite database") from exc
        kind = faults.classify_error(exc)
        if kind is not None:
            raise faults.fault(kind, message.splitlines()[0], where) from exc
        raise
    except OSError as exc:
        kind = faults.classify_os(exc)
        if kind is not None:
            raise faults.fault(kind, f"{exc.strerror}: {exc.filename}", where) from exc
        raise
