"""PostgreSQL's side of ``fetch.driver_batches``: a server-side cursor whose text columns
arrive as their UTF-8 bytes. Apart so that nothing on SQLite (a verify worker above all)
loads the PostgreSQL driver."""

from __future__ import annotations

import codecs
from typing import Any

from psycopg.abc import Buffer
from psycopg.adapt import Loader
from psycopg.types.string import ByteaBinaryLoader


def bytes_cursor(driver: Any, name: str) -> Any:
    """A named (server-side) cursor on the psycopg connection ``driver`` that loads text and
    varchar columns as UTF-8 bytes."""
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
