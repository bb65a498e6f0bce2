"""The verify walk's fast path: ledger rows accepted on the header the database built.

Shared by the walk in this process (``walk.Walk``) and by a verify worker, which loads only
this, the fetch and the key (``verify_worker``): the full walk's imports (the schema, the
diagnosis, SQLAlchemy's expression language) cost a worker more CPU than a tenth of a
million-row chain takes to hash. A row this path does not accept is not judged here: the
caller checks it on the reference path (``walk.check_row``), which accepts it or names why not.

A row is accepted when it is the next one, links to the last accepted tag, its header (built
by the database, ``sqlheader``) holds no backslash and matches its tag, and its payload is
present and matches its digest.
"""

from __future__ import annotations

import gc
import hmac
from binascii import b2a_hex
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from memwarden.audit.chain import ChainKey

# Rows fetched at a time, by the walk and by a worker: a batch small enough to stay in the
# CPU's cache between its fetch and its hashing, large enough that a batch's round trip (on
# PostgreSQL, through a server-side cursor) costs little. 2,000 rows of ~1.3 kB, held twice on
# the way in (the driver's buffer, then Python's bytes), are ~5 MB: they did not stay in a
# 1 MB L2 cache, and a 1M-row verify on 2 workers made 154k-168k rows/s on PostgreSQL and
# 241k-309k on SQLite; with 250 rows, 208k-231k and 284k-316k (alternated runs, docs/scaling.md,
# session 13). Progress is reported every PROGRESS_ROWS rows.
BATCH = 250
PROGRESS_ROWS = 20_000


def accept(
    rows: Sequence[tuple[Any, ...]], inner: Any, outer: Any, expected: int, prev: bytes
) -> tuple[int, bytes]:
    """Accept ``rows`` (the fast query's: seq, header, tag, prev tag, digest, body) from the
    first, while each passes; return the next expected sequence number and the last accepted
    tag. The rows accepted are the first ``returned - expected``; the row after them, if any,
    is the first this path does not accept.

    ``inner`` and ``outer`` are the key's HMAC states (``ChainKey.hmac_states``): HMAC-SHA256
    inlined, since two Python calls per HMAC, twice a row, were a tenth of the walk. They are
    copied, never changed."""
    compare = hmac.compare_digest
    for seq, header, tag, prev_tag, digest, body in rows:
        if (
            seq == expected
            and prev_tag == prev
            and header is not None
            and body is not None
            and b"\\" not in header
        ):
            mac = inner.copy()
            mac.update(header)
            outer_mac = outer.copy()
            outer_mac.update(mac.digest())
            if compare(b2a_hex(outer_mac.digest()), tag):
                mac = inner.copy()
                mac.update(body)
                outer_mac = outer.copy()
                outer_mac.update(mac.digest())
                if compare(b2a_hex(outer_mac.digest()), digest):
                    prev = tag
                    expected = seq + 1
                    continue
        break
    return expected, prev


def tagged(row: tuple[Any, ...], key: ChainKey) -> bool:
    """The row's own tag holds on its database-built header (its link and payload are not
    looked at): what a walk starting after it needs of it, once. False sends the caller to
    the reference path, which decides."""
    header, tag = row[1], row[2]
    if header is None or b"\\" in header:
        return False
    return hmac.compare_digest(key.hex_mac(header), tag)


@contextmanager
def collector_paused() -> Iterator[None]:
    """The cyclic garbage collector off for the block (the walk here; the mutation bench's raw
    side too): the walk's rows are tuples of bytes and numbers, which can form no cycle, yet
    allocating millions of them set off full collections of the whole process (a sixth of a
    long walk). Put back as it was, whatever happens."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
