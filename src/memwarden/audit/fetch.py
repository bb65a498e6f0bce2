"""Reading the ledger fast, for the verify walk and the tree: the driver's own rows, text as
UTF-8 bytes, in batches; and those batches read ahead on a thread while the caller works.

The walk's per-row budget is a few microseconds: building SQLAlchemy rows, or decoding text
only to encode it again for hashing, would take a good part of it.
"""

from __future__ import annotations

import codecs
import queue
import threading
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from typing import Any

from psycopg.abc import Buffer
from psycopg.adapt import Loader
from psycopg.types.string import ByteaBinaryLoader
from sqlalchemy import Connection

# How long the reader waits between looks at whether its consumer is still there, and the
# consumer between looks at whether the reader is still alive: a dead thread never leaves
# the other side waiting for ever.
_POLL_S = 0.5


def driver_batches(
    conn: Connection, query: Any, size: int, name: str = "memwarden_verify"
) -> Generator[list[Any], None, None]:
    """The query's rows as the driver's plain tuples, text as UTF-8 bytes, in batches, on
    the caller's transaction. PostgreSQL streams through a server-side cursor."""
    compiled = query.compile(dialect=conn.dialect)
    params = compiled.construct_params()
    args: Any = (
        tuple(params[name] for name in compiled.positiontup) if compiled.positional else params
    )
    driver: Any = conn.connection.dbapi_connection
    if conn.dialect.name == "postgresql":
        if codecs.lookup(driver.info.encoding).name == "utf-8":
            # Binary results: text arrives as its UTF-8 bytes and the driver's own C loader
            # hands them over as they are; a Python loader would run once per field.
            cursor = driver.cursor(name=name, binary=True)
            loader: type[Loader] = ByteaBinaryLoader
        else:
            cursor = driver.cursor(name=name)
            loader = _Utf8Loader
        for text_type in ("text", "varchar"):
            cursor.adapters.register_loader(text_type, loader)
        restore = None
    else:
        # The connection is this transaction's alone until it ends; put its setting back.
        restore, driver.text_factory = driver.text_factory, bytes
        cursor = driver.cursor()
    try:
        cursor.execute(str(compiled), args)
        while batch := cursor.fetchmany(size):
            yield batch
    finally:
        cursor.close()
        if restore is not None:
            driver.text_factory = restore


class _Utf8Loader(Loader):
    """Text as UTF-8 bytes from a connection whose client encoding is not UTF-8 (slower: it
    runs once per field)."""

    def __init__(self, oid: int, context: Any = None) -> None:
        super().__init__(oid, context)
        encoding = self.connection.info.encoding if self.connection is not None else "utf-8"
        self._recode = None if codecs.lookup(encoding).name == "utf-8" else encoding

    def load(self, data: Buffer) -> bytes:
        if self._recode is None:
            return bytes(data)
        return bytes(data).decode(self._recode).encode("utf-8")


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
