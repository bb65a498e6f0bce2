"""PostgreSQL's side of ``fetch.cursor_batches``: rows whose text columns arrive as their UTF-8
bytes, through a server-side cursor or streamed. Apart so that nothing on SQLite (a verify
worker above all) loads the PostgreSQL driver."""

from __future__ import annotations

import codecs
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

from psycopg import capabilities
from psycopg.abc import Buffer
from psycopg.adapt import Loader
from psycopg.pq import TransactionStatus
from psycopg.types.string import ByteaBinaryLoader

if TYPE_CHECKING:
    from memwarden.audit.fetch import DriverQuery

# Rolled back to when a stream is stopped early (see ``streamed_batches``).
_SAVEPOINT = "memwarden_stream"


def streams() -> bool:
    """Whether rows can be streamed in chunks: the libpq in use is 17 or later."""
    return bool(capabilities.has_stream_chunked())


def streamed_batches(
    driver: Any, query: DriverQuery, size: int
) -> Generator[list[Any], None, None]:
    """The query's rows, streamed in chunks of ``size`` (libpq 17: ``streams``), on the
    connection's open transaction.

    The server sends the rows without waiting to be asked for each batch, as it does through a
    server-side cursor: on a 1M-row verify, one process's CPU a row fell from 9.2-10.7 µs (its
    own and the server's, fetched 250 rows at a time through a cursor) to 6.9-8.2 µs
    (docs/scaling.md, session 13). The connection is the stream's until it ends: nothing else
    can be asked of it in between.

    Stopped early (the generator closed), the driver cancels the rest of the query; the
    transaction then fails, so the stream runs inside a savepoint, rolled back to: the
    transaction goes on, in the snapshot it had (repeatable read keeps one for the whole
    transaction). While the generator is suspended the connection is the stream's: a query on
    it from the same thread would wait for the stream for ever (the driver's lock)."""
    cursor = bytes_cursor(driver)
    cursor.execute(f"SAVEPOINT {_SAVEPOINT}")
    rows = cursor.stream(query.sql, query.args, size=size)
    failing = False
    try:
        batch: list[Any] = []
        for row in rows:
            batch.append(row)
            if len(batch) == size:
                yield batch
                batch = []
        if batch:
            yield batch
    except GeneratorExit:
        raise  # stopped early: not a failure
    except BaseException:
        failing = True
        raise
    finally:
        try:
            rows.close()  # stopped early: the driver cancels the query, reads what was sent
            if not driver.closed:
                if driver.info.transaction_status == TransactionStatus.INERROR:
                    cursor.execute(f"ROLLBACK TO SAVEPOINT {_SAVEPOINT}")
                cursor.execute(f"RELEASE SAVEPOINT {_SAVEPOINT}")
            cursor.close()
        except Exception:
            if not failing:
                raise
            # The error on its way out already says what went wrong with this connection.


def bytes_cursor(driver: Any, name: str = "") -> Any:
    """A cursor on the psycopg connection ``driver``, server-side when named, that loads text
    and varchar columns as UTF-8 bytes."""
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
    return cursor


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
