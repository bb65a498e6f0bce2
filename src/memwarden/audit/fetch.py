"""Reading the ledger fast, for the verify walk and the tree: the driver's own rows, text as
UTF-8 bytes, in batches; and those batches read ahead on a thread while the caller works.

The walk's per-row budget is a few microseconds: building SQLAlchemy rows, or decoding text
only to encode it again for hashing, would take a good part of it.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # a verify worker reads without loading SQLAlchemy
    from sqlalchemy import Connection
    from sqlalchemy.engine import Dialect

# How long the reader waits between looks at whether its consumer is still there, and the
# consumer between looks at whether the reader is still alive: a dead thread never leaves
# the other side waiting for ever.
_POLL_S = 0.5


@dataclass(frozen=True)
class DriverQuery:
    """A query compiled for one engine kind: its SQL text and its arguments in the driver's
    own form. It pickles, so a verify worker receives its part's query ready to run."""

    sql: str
    args: Any

    @classmethod
    def of(cls, query: Any, dialect: Dialect) -> DriverQuery:
        compiled = query.compile(dialect=dialect)
        params = compiled.construct_params()
        if compiled.positional:
            return cls(str(compiled), tuple(params[name] for name in compiled.positiontup))
        return cls(str(compiled), params)


def driver_batches(
    conn: Connection, query: Any, size: int, name: str = "memwarden_verify"
) -> Generator[list[Any], None, None]:
    """The query's rows (a SQLAlchemy query, or a ``DriverQuery``) as the driver's plain
    tuples, text as UTF-8 bytes, in batches, on the caller's transaction. PostgreSQL streams
    through a server-side cursor."""
    if not isinstance(query, DriverQuery):
        query = DriverQuery.of(query, conn.dialect)
    return cursor_batches(conn.connection.dbapi_connection, conn.dialect.name, query, size, name)


def cursor_batches(
    driver: Any,
    engine_kind: str,
    query: DriverQuery,
    size: int,
    name: str = "memwarden_verify",
    *,
    stream: bool = False,
) -> Generator[list[Any], None, None]:
    """``driver_batches`` on a DB-API connection (``engine_kind``: "sqlite" or "postgresql"),
    on its open transaction. ``stream``: on PostgreSQL, the rows are streamed rather than
    fetched through a server-side cursor when the driver can (``fetch_pg.streamed_batches``);
    the caller must then ask nothing else of the connection until the batches are closed."""
    if engine_kind == "postgresql":
        # Imported here: a SQLite verify worker never loads the PostgreSQL driver.
        from memwarden.audit.fetch_pg import bytes_cursor, streamed_batches, streams

        if stream and streams():
            yield from streamed_batches(driver, query, size)
        else:
            yield from _fetched(bytes_cursor(driver, name), query, size)
        return
    # The connection is this transaction's alone until it ends; put its setting back.
    restore, driver.text_factory = driver.text_factory, bytes
    try:
        yield from _fetched(driver.cursor(), query, size)
    finally:
        driver.text_factory = restore


def _fetched(cursor: Any, query: DriverQuery, size: int) -> Generator[list[Any], None, None]:
    try:
        cursor.execute(query.sql, query.args)
        while batch := cursor.fetchmany(size):
            yield batch
    finally:
        cursor.close()


class ReaderFailed(RuntimeError):
    """The read-ahead thread stopped without its batches' end or an error to hand over."""


class _End:
    pass


class _Raised:
    def __init__(self, error: BaseException) -> None:
        self.error = error


@contextmanager
def read_ahead(batches: Iterator[list[Any]], depth: int = 2) -> Iterator[Iterator[list[Any]]]:
    """``batches`` read on a thread, up to ``depth`` batches ahead of the caller.

    On PostgreSQL the server builds the next batch while this process hashes the current one
    (the driver lets go of the interpreter while it waits on the socket): the two run on two
    cores instead of taking turns. An error on the thread is raised again in the caller, at
    the point in the rows where it happened: the walk fails as it would have without the
    thread, never passes short. On leaving, the thread is stopped and joined before
    ``batches`` is closed (on the caller's thread), so the connection is the caller's alone
    again: a diagnosis may query it."""
    handed: queue.Queue[list[Any] | _End | _Raised] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def hand(item: list[Any] | _End | _Raised) -> bool:
        while not stop.is_set():
            try:
                handed.put(item, timeout=_POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def read() -> None:
        try:
            for batch in batches:
                if not hand(batch):
                    return
        except BaseException as error:  # noqa: BLE001 - every error goes to the caller
            hand(_Raised(error))
            return
        hand(_End())

    def receive() -> Iterator[list[Any]]:
        while True:
            try:
                item = handed.get(timeout=_POLL_S)
            except queue.Empty:
                if reader.is_alive():
                    continue
                # It may have handed its last item between the timeout and the check.
                try:
                    item = handed.get_nowait()
                except queue.Empty:
                    raise ReaderFailed("the ledger reader thread stopped early") from None
            if isinstance(item, _End):
                return
            if isinstance(item, _Raised):
                raise item.error
            yield item

    reader = threading.Thread(target=read, name="memwarden-ledger-reader", daemon=True)
    reader.start()
    try:
        yield receive()
    finally:
        stop.set()
        reader.join()
        close = getattr(batches, "close", None)
        if close is not None:
            close()
