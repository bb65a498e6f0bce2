"""Engines for both backends, with SQLite's per-connection settings applied on every connect."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import ConnectionPoolEntry, SingletonThreadPool

from memwarden.config import PG_SCHEMA_NAME, Settings
from memwarden.db import liveness
from memwarden.db.checkpointer import BACKSTOP_PAGES
from memwarden.db.driver import sqlite_driver
from memwarden.errors import StorageError
from memwarden.private_files import private_file

SQLITE_HEADER = b"SQLite format 3\x00"


def sqlite_path(url: str | URL) -> Path | None:
    """The file of a SQLite URL; None for another engine or an in-memory database.

    With ``?uri=true`` the database is a SQLite URI filename (``file:/path/x.db``,
    https://sqlite.org/uri.html), which SQLite opens as the file it names: taken as a plain
    path, its text made a stray ``file:`` folder in the working directory, checked and made
    private a file SQLite never opened, and looked for the WAL beside the wrong file."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.query.get("mode") == "memory":
        return None
    database = parsed.database or ""
    if database.startswith("file:") and _true(parsed.query.get("uri")):
        database = _uri_file(database)
    if database in ("", ":memory:"):
        return None
    return Path(database)


def _true(value: str | tuple[str, ...] | None) -> bool:
    last = value[-1] if isinstance(value, tuple) else value
    return last is not None and last.lower() in ("true", "1", "yes", "on", "t", "y")


def _uri_file(database: str) -> str:
    """The path a SQLite URI filename names: after ``file:``, an authority (none, or
    ``localhost``, the only ones SQLite opens), then the path, percent-decoded."""
    rest = database.removeprefix("file:").partition("#")[0]
    if rest.startswith("//"):
        authority, slash, path = rest[2:].partition("/")
        if authority not in ("", "localhost"):
            raise StorageError(
                f"a SQLite URI names a file on host {authority!r}: only a local file can be used"
            )
        rest = slash + path
    return unquote(rest)


def _check_sqlite_file(path: Path) -> None:
    """Refuse a file that exists but is not a SQLite database, before SQLite trips over it."""
    if path.is_dir():
        raise StorageError(f"{path} is a directory, not a SQLite database file")
    if path.exists() and path.stat().st_size > 0:
        with path.open("rb") as handle:
            if handle.read(len(SQLITE_HEADER)) != SQLITE_HEADER:
                raise StorageError(f"{path} is not a SQLite database")


def make_engine(settings: Settings) -> Engine:
    url = settings.resolved_database_url
    backend = make_url(url).get_backend_name()
    if backend == "sqlite":
        if settings.resolved_pg_schema:
            raise StorageError(
                "MEMWARDEN_PG_SCHEMA (or ?schema= on the URL) applies to PostgreSQL only"
            )
        return _sqlite_engine(url, settings)
    if backend == "postgresql":
        engine = create_engine(
            pg_url(
                url, settings.resolved_pg_schema, connect_timeout_s=settings.pg_connect_timeout_s
            ),
            pool_size=10,
            max_overflow=20,
        )
        _bound_lock_waits(engine, settings.pg_lock_timeout_ms)
        liveness.watch(engine)  # pool_pre_ping's check, without its round trip when it can
        return engine
    raise StorageError(f"unsupported database URL scheme {backend!r}: use sqlite or postgresql")


def pg_url(url: str, schema: str | None, *, connect_timeout_s: int = 0) -> URL:
    """The URL the driver gets: ``?schema=`` taken off (libpq knows no such option), and:

    - With a schema, every connection's search_path set to that schema alone: with ``public``
      behind it, a table missing from the tenant's schema would silently resolve to another
      store's. It goes in libpq's ``options`` (appended to any the URL already has; the last
      setting wins), so it holds from the first statement of every pooled connection, with no
      extra round trip.
    - ``connect_timeout`` (when not 0) unless the URL, ``PGCONNECT_TIMEOUT`` or a service
      (``?service=``, ``PGSERVICE``: its file may set one) has a say: libpq's default is to
      wait for as long as the network does."""
    parsed = make_url(url).difference_update_query(["schema"])
    query: dict[str, str] = {}
    if schema is not None:
        if not PG_SCHEMA_NAME.match(schema):
            raise StorageError(f"invalid PostgreSQL schema name {schema!r}")
        existing = parsed.query.get("options")
        options = existing[-1] if isinstance(existing, tuple) else existing
        search_path = f"-csearch_path={schema}"
        query["options"] = f"{options} {search_path}" if options else search_path
    told = {"connect_timeout", "service"} & set(parsed.query)
    if connect_timeout_s and not told:
        if not (os.environ.get("PGCONNECT_TIMEOUT") or os.environ.get("PGSERVICE")):
            query["connect_timeout"] = str(connect_timeout_s)
    return parsed.update_query_dict(query) if query else parsed


# Bounds the lock wait where nothing else has: a URL's ``options``, PGOPTIONS, a service file,
# ``ALTER ROLE/DATABASE … SET`` and postgresql.conf all show in current_setting, and win.
_BOUND_LOCK_WAIT = (
    "SELECT set_config('lock_timeout', %s, false) WHERE current_setting('lock_timeout') = '0'"
)


def _bound_lock_waits(engine: Engine, timeout_ms: int) -> None:
    """Every new connection of ``engine`` waits at most ``timeout_ms`` for a lock, unless its
    server, role, database or URL already bound the wait (PostgreSQL's default: forever).

    One round trip per new connection, in autocommit (a pooled connection keeps it)."""
    if not timeout_ms:
        return
    value = f"{int(timeout_ms)}ms"

    def on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
        was = dbapi_connection.autocommit
        dbapi_connection.autocommit = True
        try:
            dbapi_connection.execute(_BOUND_LOCK_WAIT, (value,))
        finally:
            dbapi_connection.autocommit = was

    event.listen(engine, "connect", on_connect)


def ensure_pg_schema(conn: Connection, schema: str | None) -> bool:
    """Create the store's schema when it is missing (``init``, migrations); True if created."""
    if schema is None or conn.dialect.name != "postgresql":
        return False
    exists = conn.execute(
        text("SELECT 1 FROM pg_namespace WHERE nspname = :name"), {"name": schema}
    ).first()
    if exists is not None:
        return False
    # The name is checked against PG_SCHEMA_NAME: safe to place, and no quoting needed.
    conn.execute(text(f"CREATE SCHEMA IF NOT EXISTS {schema}"))
    return True


def _sqlite_engine(url: str, settings: Settings) -> Engine:
    driver = sqlite_driver(settings.sqlite_driver)
    path = sqlite_path(url)
    if path is not None:
        _check_sqlite_file(path)
        # Created private (0600, the folder 0700) before SQLite opens it: SQLite gives the
        # WAL and shared-memory files the database file's mode.
        private_file(path)
    # A file's pool hands out the connection used last (LIFO): SQLite drops a connection's
    # page cache whenever another connection has committed since its last transaction, so
    # with the pool's default (FIFO) a caller that held two connections once then took them
    # in turn, and every transaction read its pages again (~30 reads from the WAL a create).
    # An in-memory database keeps one connection a thread (each new connection would be a
    # new, empty database), said outright: SQLAlchemy plans to pool ``mode=memory`` in a queue.
    pooling: dict[str, Any] = (
        {"pool_use_lifo": True} if path is not None else {"poolclass": SingletonThreadPool}
    )
    engine = create_engine(
        url,
        module=driver.module,
        connect_args={
            "check_same_thread": False,
            "timeout": settings.sqlite_busy_timeout_ms / 1000,
        },
        **pooling,
    )
    synchronous = settings.sqlite_synchronous
    busy_timeout = int(settings.sqlite_busy_timeout_ms)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
        # Take transaction control away from the sqlite3 module so SAVEPOINT and
        # BEGIN IMMEDIATE behave as written.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={busy_timeout}")
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        # Freed bytes are zeroed on every write, not only in an erase's transaction: the
        # engine's own moves (a page split or a leaf turned interior, an update's old cell,
        # an overflow chain freed) left copies of a text that a later erase could not reach,
        # and its receipt said no copy was left on disk.
        cursor.execute("PRAGMA secure_delete=ON")
        if path is not None:
            # The checkpointer's thread folds the log in; a writer only when it fell behind.
            cursor.execute(f"PRAGMA wal_autocheckpoint={BACKSTOP_PAGES}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        # Writers take the write lock up front: a deferred transaction that later upgrades
        # to a writer can fail with SQLITE_BUSY instead of waiting.
        sql = (
            "BEGIN IMMEDIATE"
            if connection.get_execution_options().get("memwarden_write")
            else "BEGIN"
        )
        # On the driver's connection: SQLAlchemy's execution of a statement (context, events,
        # result) cost several times what SQLite takes to begin, on every transaction. Its
        # errors are raised as SQLAlchemy's own, as ``exec_driver_sql`` would raise them.
        dbapi: Any = connection.dialect.loaded_dbapi
        try:
            connection.connection.dbapi_connection.execute(sql)
        except dbapi.Error as exc:
            raise DBAPIError.instance(
                sql, (), exc, dbapi.Error, dialect=connection.dialect
            ) from exc

    return engine
