"""Hot statements: written in SQLAlchemy Core, run on the driver's own cursor.

Every mutation appends to the ledger (and most create a memory), and SQLAlchemy's
per-execution bookkeeping (cache lookup, parameter processing, result set-up) costs more than
these small statements do. So each is compiled once per dialect and executed with bound
parameters on the connection's DBAPI cursor, inside the caller's transaction. Driver errors are re-raised as SQLAlchemy's
own (``DBAPIError`` and its subclasses), exactly as ``Connection.execute`` would raise them.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

from sqlalchemy import Connection, Dialect
from sqlalchemy.exc import DBAPIError, StatementError
from sqlalchemy.sql.expression import ClauseElement


class _Compiled(NamedTuple):
    sql: str
    order: tuple[str, ...] | None  # bind names in order, for positional drivers
    defaults: dict[str, Any]
    processors: tuple[tuple[str, Callable[[Any], Any]], ...]


class DriverStatement:
    """One statement (or one per dialect, for dialect-specific SQL such as an upsert),
    compiled once per dialect and run on the driver's cursor with the columns' bind
    processors applied, so the driver receives exactly what ``Connection.execute`` would
    send it."""

    def __init__(
        self,
        statement: ClauseElement | Mapping[str, ClauseElement],
        column_keys: Sequence[str] | None = None,
    ) -> None:
        self._statements = statement if isinstance(statement, Mapping) else None
        self._statement = statement if not isinstance(statement, Mapping) else None
        self._column_keys = list(column_keys) if column_keys is not None else None
        self._lock = threading.Lock()
        self._compiled: dict[str, _Compiled] = {}

    def _for(self, dialect: Dialect) -> _Compiled:
        found = self._compiled.get(dialect.name)
        if found is None:
            statement = (
                self._statements[dialect.name] if self._statements is not None else self._statement
            )
            assert statement is not None
            compiled: Any = statement.compile(dialect=dialect, column_keys=self._column_keys)
            order = tuple(compiled.positiontup or ()) if compiled.positional else None
            # Values fixed in the statement itself (a LIMIT, say); the rest come per call.
            fixed = {
                name: bind.value
                for name, bind in compiled.binds.items()
                if bind.value is not None and not bind.required
            }
            processors = tuple(
                (name, processor)
                for name, bind in compiled.binds.items()
                if (processor := bind.type.bind_processor(dialect)) is not None
            )
            found = _Compiled(str(compiled), order, fixed, processors)
            with self._lock:
                self._compiled[dialect.name] = found
        return found

    def prepare(
        self, conn: Connection, params: Sequence[Mapping[str, Any]] = ()
    ) -> tuple[str, list[Any]]:
        """The SQL and the driver's parameter rows for ``params`` (one row at least)."""
        sql, order, defaults, processors = self._compiled.get(conn.dialect.name) or self._for(
            conn.dialect
        )
        merged: list[Mapping[str, Any]]
        if defaults or processors:
            processed = [{**defaults, **p} for p in params] or [dict(defaults)]
            for name, processor in processors:
                for values in processed:
                    if name in values:
                        values[name] = processor(values[name])
            merged = list(processed)
        else:
            merged = list(params) or [{}]
        if order is None:
            return sql, merged
        return sql, [tuple([p[name] for name in order]) for p in merged]

    def execute(
        self,
        conn: Connection,
        params: Sequence[Mapping[str, Any]] = (),
        *,
        fetch: bool = False,
    ) -> Any:
        """Run with each mapping of ``params`` (one execute, or executemany for several);
        returns the first row when ``fetch``."""
        return self._on_cursor(conn, params, _first_row if fetch else _nothing)

    def changes(self, conn: Connection, params: Mapping[str, Any]) -> int:
        """Run once with ``params``; the number of rows it inserted, updated or deleted (the
        driver's ``rowcount``: 0 for an upsert that did nothing)."""
        return int(self._on_cursor(conn, [params], _row_count))

    def _on_cursor(
        self,
        conn: Connection,
        params: Sequence[Mapping[str, Any]],
        answer: Callable[[Any], Any],
    ) -> Any:
        """Run on a cursor of the driver's own; ``answer`` reads the result off it."""
        sql, rows = self.prepare(conn, params)
        driver: Any = conn.connection.dbapi_connection
        cursor = driver.cursor()
        try:
            _run(cursor, sql, rows)
            return answer(cursor)
        except conn.dialect.loaded_dbapi.Error as exc:
            raise wrapped(conn, sql, rows, exc) from exc
        finally:
            cursor.close()

    def execute_then_commit(
        self, conn: Connection, params: Mapping[str, Any], *, flush_after: bool = False
    ) -> None:
        """PostgreSQL: run the statement with one set of ``params`` and then COMMIT, in one
        round trip. The parameters are bound by the driver on the client (psycopg's
        ``ClientCursor``, which escapes them) because only the simple query protocol takes two
        statements at once. SQLAlchemy's own commit then finds the transaction over and sends
        nothing. On an error, ``in_failed_transaction`` tells a failed statement (the
        transaction still open) from a failed commit (or a failed flush).

        ``flush_after``: the COMMIT does not wait for its WAL flush (``synchronous_commit``
        off for this transaction: its locks are released as soon as its commit record is
        written), and a statement after it, still in the same round trip, waits for the WAL to
        be durable up to a point past that record (``WAL_FLUSH``). The call returns only once
        the transaction is durable, as with a plain COMMIT; what changes is that the
        transaction's locks are not held during the flush."""
        sql, rows = self.prepare(conn, [params])
        script = (
            f"SET LOCAL synchronous_commit TO off; {sql}; COMMIT; {WAL_FLUSH}"
            if flush_after
            else f"{sql}; COMMIT"
        )
        try:
            libpq_exec(conn, client_bound(conn, script, rows[0]))
        except conn.dialect.loaded_dbapi.Error as exc:
            raise wrapped(conn, sql, rows, exc) from exc


def client_bound(conn: Connection, sql: str, params: Any) -> str:
    """PostgreSQL: ``sql`` with ``params`` bound on the client (``client_bound_each``), to be
    sent with ``libpq_exec``."""
    return client_bound_each(conn, [sql], params)[0]


def client_bound_each(conn: Connection, sqls: Sequence[str], params: Any) -> list[str]:
    """``client_bound`` for several pieces of SQL with the same parameters (each piece takes
    those it names). Text, whole numbers and NULLs are quoted here, into the values psycopg's
    ``ClientCursor`` sends (the text may differ: psycopg writes a string with a backslash as
    ``E'...'``, with the backslash doubled; the server reads the same value). Its quoting cost
    ~60 µs an append, on the interpreter lock every writer thread shares. Anything else, a
    placeholder with no value, or a connection whose strings are not standard-conforming UTF-8
    goes through psycopg, which quotes it or raises its own error."""
    driver: Any = conn.connection.dbapi_connection
    literals = _literals(driver, params)
    if literals is not None:
        try:
            return [
                PLACEHOLDERS.sub(lambda m: literals[m[1]] if m[1] else "%", sql) for sql in sqls
            ]
        except KeyError:
            pass  # a placeholder with no value: psycopg says so
    cursor = conn.dialect.loaded_dbapi.ClientCursor(driver)
    try:
        return [str(cursor.mogrify(sql, params)) for sql in sqls]
    finally:
        cursor.close()


# psycopg's named placeholders (as SQLAlchemy compiles them: the name is group 1) and its
# escaped percent sign (no group).
PLACEHOLDERS = re.compile(r"%\((\w+)\)s|%%")


def _literals(driver: Any, params: Any) -> dict[str, str] | None:
    """``params`` as SQL literals, or None when psycopg must quote them: a value of another
    type, text psycopg refuses (a NUL) or that UTF-8 cannot hold (a lone surrogate), or a
    connection on which ``'...'`` does not mean the text as it is (backslashes as escapes, or
    another encoding)."""
    if not isinstance(params, Mapping) or driver.info.encoding != "utf-8":
        return None
    if driver.pgconn.parameter_status(b"standard_conforming_strings") != b"on":
        return None
    literals: dict[str, str] = {}
    for name, value in params.items():
        kind = type(value)
        if kind is str:
            if "\x00" in value or not (value.isascii() or _utf8(value)):
                return None
            literals[name] = "'" + value.replace("'", "''") + "'"
        elif kind is int:
            # A negative number after a minus sign would open a comment: spaced, as psycopg does.
            literals[name] = str(value) if value >= 0 else f" {value}"
        elif value is None:
            literals[name] = "NULL"
        else:
            return None
    return literals


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def libpq_exec(conn: Connection, sql: str) -> Any:
    """PostgreSQL: send ``sql`` (one statement or several) with libpq's ``PQexec`` on the
    driver's connection, in one round trip, and return the last statement's result; a failed
    statement raises psycopg's own error for it, as a cursor would (the statements after it
    are not run). Why not a cursor: psycopg's cursor builds a result object, a description
    and its column objects for every statement of the script, which costs several times the
    CPU of the statements' round trip here (~150 µs against ~30 µs for the chain lock's three
    statements), and the ledger runs these while it holds the chain lock, with every other
    writer waiting. psycopg's PGconn releases the interpreter lock while PQexec waits, and
    the driver keeps reading the transaction's state from libpq, so it sees the outcome
    (committed, or a failed transaction) exactly as if a cursor had run the script."""
    driver: Any = conn.connection.dbapi_connection
    pq = conn.dialect.loaded_dbapi.pq
    encoding = driver.info.encoding
    result = driver.pgconn.exec_(sql.encode(encoding))
    if result.status not in (pq.ExecStatus.COMMAND_OK, pq.ExecStatus.TUPLES_OK):
        raise conn.dialect.loaded_dbapi.errors.error_from_result(result, encoding=encoding)
    return result


def _in_transaction(conn: Connection) -> bool:
    """PostgreSQL: whether the driver's connection is inside an open (not failed) transaction."""
    driver: Any = conn.connection.dbapi_connection
    info = getattr(driver, "info", None)
    return info is not None and int(info.transaction_status) == _PG_IN_TRANSACTION


# A transaction of its own that writes WAL (a transactional logical message: an xid and one
# small record, no table touched, no lock taken) and so, committing with the session's
# ``synchronous_commit``, waits until the WAL is flushed up to its commit record. WAL is
# flushed in order, so every commit record before it is durable too. Concurrent flushes are
# merged by the server (one fsync for all the waiters present). Any role may call it (PUBLIC
# holds EXECUTE by default); at ``wal_level`` replica it is only a WAL record, read by no one.
WAL_FLUSH = "SELECT pg_logical_emit_message(true, 'memwarden.flush', '')"


def in_failed_transaction(conn: Connection) -> bool:
    """PostgreSQL: whether the connection's transaction is open but failed (a statement in it
    raised), as opposed to over (committed, rolled back, or the connection lost)."""
    driver: Any = conn.connection.dbapi_connection
    info = getattr(driver, "info", None)
    return info is not None and int(info.transaction_status) == _PG_IN_ERROR


# libpq's PQTRANS_IDLE, PQTRANS_INTRANS and PQTRANS_INERROR.
_PG_IDLE = 0
_PG_IN_TRANSACTION = 2
_PG_IN_ERROR = 3


def _begin_prefix(conn: Connection) -> str | None:
    """PostgreSQL: what a script sent with ``libpq_exec`` must start with to run in the
    caller's transaction: nothing inside one, the BEGIN psycopg would send when it has not
    begun it yet (with the connection's isolation level, read-only and deferrable modes), or
    None when the script must go through the driver instead (autocommit, a failed
    transaction). psycopg begins a transaction with a round trip of its own before the first
    statement, and a create's first statement is one (its id): sent in front of it, the BEGIN
    costs no round trip. The driver then reads the open transaction off libpq, sends no BEGIN
    of its own, and commits it as usual."""
    driver: Any = conn.connection.dbapi_connection
    info = getattr(driver, "info", None)
    if info is None:
        return None
    status = int(info.transaction_status)
    if status == _PG_IN_TRANSACTION:
        return ""
    if status != _PG_IDLE or driver.autocommit is not False:
        return None
    # What psycopg's own BEGIN says: SQLAlchemy sets the isolation level explicitly once a
    # connection was used in autocommit (an API key's look-up), and back.
    begin = ["BEGIN"]
    if driver.isolation_level is not None:
        begin.append(f"ISOLATION LEVEL {_ISOLATION[int(driver.isolation_level)]}")
    if driver.read_only is not None:
        begin.append("READ ONLY" if driver.read_only else "READ WRITE")
    if driver.deferrable is not None:
        begin.append("DEFERRABLE" if driver.deferrable else "NOT DEFERRABLE")
    return " ".join(begin) + "; "


# psycopg's IsolationLevel values, as SQL.
_ISOLATION = {
    1: "READ UNCOMMITTED",
    2: "READ COMMITTED",
    3: "REPEATABLE READ",
    4: "SERIALIZABLE",
}


class DriverScript:
    """Constant statements (no parameters) sent together: one round trip on PostgreSQL,
    whose simple query protocol runs them in order, each with its own snapshot. Drivers that
    take one statement at a time (sqlite3, where a round trip costs nothing) run them one by
    one. Returns the first row of the last statement when ``fetch``."""

    def __init__(self, *statements: ClauseElement) -> None:
        self._statements = statements
        self._lock = threading.Lock()
        self._compiled: dict[str, list[str]] = {}

    def _for(self, dialect: Dialect) -> list[str]:
        found = self._compiled.get(dialect.name)
        if found is None:
            texts = [
                str(s.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))
                for s in self._statements
            ]
            found = ["; ".join(texts)] if dialect.name == "postgresql" else texts
            with self._lock:
                self._compiled[dialect.name] = found
        return found

    def fetch_text(self, conn: Connection) -> tuple[str | None, ...] | None:
        """The first row of the last statement, each value as PostgreSQL's text for it (None
        for NULL), or None when there is no row. On PostgreSQL in a transaction the script
        goes through libpq directly (``libpq_exec``: the ledger runs this one under the chain
        lock), with the transaction's BEGIN in front when the driver has not sent it yet
        (``_begin_prefix``); elsewhere as ``execute``, with the values turned to text."""
        prefix = _begin_prefix(conn) if conn.dialect.name == "postgresql" else None
        if prefix is None:
            row = self.execute(conn, fetch=True)
            return None if row is None else tuple(None if v is None else str(v) for v in row)
        sql = prefix + self._for(conn.dialect)[0]
        try:
            result = libpq_exec(conn, sql)
        except conn.dialect.loaded_dbapi.Error as exc:
            raise wrapped(conn, sql, [], exc) from exc
        if result.ntuples == 0:
            return None
        driver: Any = conn.connection.dbapi_connection
        encoding = driver.info.encoding
        values = (result.get_value(0, column) for column in range(result.nfields))
        return tuple(None if v is None else bytes(v).decode(encoding) for v in values)

    def sql(self, dialect: Dialect) -> str:
        """PostgreSQL: the script as one string (to send with more statements after it)."""
        return "; ".join(self._for(dialect))

    def execute(self, conn: Connection, *, fetch: bool = False) -> Any:
        driver: Any = conn.connection.dbapi_connection
        cursor = driver.cursor()
        sql = ""
        try:
            for sql in self._for(conn.dialect):
                cursor.execute(sql)
            nextset = getattr(cursor, "nextset", None)  # psycopg: on to the last result
            while nextset is not None and nextset():
                pass
            return cursor.fetchone() if fetch else None
        except conn.dialect.loaded_dbapi.Error as exc:
            raise wrapped(conn, sql, [], exc) from exc
        finally:
            cursor.close()


def _first_row(cursor: Any) -> Any:
    return cursor.fetchone()


def _nothing(_cursor: Any) -> None:
    return None


def _row_count(cursor: Any) -> int:
    return int(cursor.rowcount)


def _run(cursor: Any, sql: str, rows: list[Any]) -> None:
    if len(rows) > 1:
        cursor.executemany(sql, rows)
    else:
        cursor.execute(sql, rows[0])


def wrapped(conn: Connection, sql: str, rows: list[Any], exc: Exception) -> StatementError:
    """The driver's error as SQLAlchemy's own, as ``Connection.execute`` would raise it."""
    dbapi: Any = conn.dialect.loaded_dbapi
    return DBAPIError.instance(sql, rows, exc, dbapi.Error, dialect=conn.dialect)
