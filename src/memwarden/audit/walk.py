"""Walking the chain in order: re-derive every tag and payload digest and check each link.

Per row the work is two HMACs over bytes already in hand (the stored payload text is hashed
as it is, never re-serialised) and one string format for the header. Only when a row fails is
more work done, to name what happened to it (``audit.diagnose``).
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, closing
from typing import Any

import structlog
from sqlalchemy import Connection, and_, func, or_, select

from memwarden.audit.chain import GENESIS_TAG, ChainKey
from memwarden.audit.diagnose import (
    ChainBroken,
    RowFields,
    blank_reason,
    diagnose_tag,
    short_chain_reason,
)
from memwarden.audit.fastpath import BATCH, PROGRESS_ROWS, accept, collector_paused
from memwarden.audit.fetch import DriverQuery, driver_batches, read_ahead
from memwarden.audit.marks import Marks
from memwarden.audit.sqlheader import NOT_NULL, header_sql
from memwarden.audit.witness import Head
from memwarden.db import schema
from memwarden.errors import InvalidInputError

log = structlog.get_logger(__name__)

L = schema.ledger
P = schema.ledger_payloads
# PostgreSQL: the next batch is read on a thread while this one is hashed (``fetch.read_ahead``).
# The server builds the rows in its own process, which then works while this one hashes: up
# to a quarter less wall time per row (measured on a loaded machine), no more CPU. Not SQLite:
# it builds the rows in this process, letting go of the interpreter for each row, so the two
# threads only take turns (measured: no gain); and its text-as-bytes setting belongs to the
# connection, which the reference path's reads set and put back, racing the reader's.
READ_AHEAD = True

Progress = Callable[[int], None]

# The columns a row's tag covers, and the tag, in ``RowFields`` order.
TAGGED = (
    L.c.seq, L.c.entity_type, L.c.entity_id, L.c.project, L.c.action, L.c.actor, L.c.ts,
    L.c.payload_digest, L.c.prev_tag, L.c.tag,
)  # fmt: skip


def _row_query(dialect: str) -> Any:
    return (
        select(*TAGGED, P.c.body, P.c.erased_at, P.c.seq, _stored_as_text(dialect))
        .select_from(L.outerjoin(P, P.c.seq == L.c.seq))
        .order_by(L.c.seq)
    )


def _fast_query(dialect: str) -> Any:
    """Per row what the fast path needs: the header built by the database (``sqlheader``),
    the tag, the link, the digest and the payload."""
    return (
        select(L.c.seq, header_sql(dialect), L.c.tag, L.c.prev_tag, L.c.payload_digest, P.c.body)
        .select_from(L.outerjoin(P, P.c.seq == L.c.seq))
        .order_by(L.c.seq)
    )


def _stored_as_text(dialect: str) -> Any:
    """Whether the row's searchable fields are stored as text. SQLite keeps whatever is
    written: a BLOB of a field's very bytes hashes alike, yet no longer matches the field in a
    query, so the row would drop out of its entity's history (or an actor's, a project's…)
    while the chain still verified. PostgreSQL enforces the column types. (The hex fields and
    the payload are compared, not searched, so a BLOB there changes nothing a reader sees.) On
    both, a NULL where memwarden always writes text (its NOT NULL dropped) is not text either."""
    present = and_(*(column.is_not(None) for column in NOT_NULL))
    if dialect != "sqlite":
        # The column types hold; NULL only where a NOT NULL was dropped behind memwarden's back.
        return present
    return and_(
        present,
        func.typeof(L.c.entity_type) == "text",
        func.typeof(L.c.entity_id) == "text",
        func.typeof(L.c.action) == "text",
        func.typeof(L.c.actor) == "text",
        func.typeof(L.c.ts) == "text",
        or_(func.typeof(L.c.project) == "text", L.c.project.is_(None)),
    )


# A row's header with its fields put in as they are. It is the canonical header exactly when
# no field needs a JSON escape. A match is trusted only when the header holds no backslash:
# every escape starts with one, so a header without any that matches its tag is the canonical
# header of the row the key tagged, field for field. Any other row is checked against its
# canonical header (``_canonical``).
_HEADER = (
    b'{"action":"%b","actor":"%b","digest":"%b","entity_id":"%b","entity_type":"%b",'
    b'"prev":"%b","project":"%b","seq":%d,"ts":"%b"}'
)
_HEADER_NO_PROJECT = (
    b'{"action":"%b","actor":"%b","digest":"%b","entity_id":"%b","entity_type":"%b",'
    b'"prev":"%b","project":null,"seq":%d,"ts":"%b"}'
)


def _canonical(row: tuple[Any, ...]) -> bytes | None:
    """The canonical header of a raw row (text as bytes), every field escaped; None when a
    field is not UTF-8 (written behind memwarden's back: it cannot be what was tagged)."""
    try:
        return _decoded(row, "strict").header()
    except UnicodeDecodeError:
        return None


def _decoded(row: tuple[Any, ...], errors: str = "replace") -> RowFields:
    """The row as text (for a diagnosis, bytes that are not UTF-8 shown replaced)."""
    return RowFields._make(
        value.decode("utf-8", errors) if isinstance(value, bytes) else value for value in row[:11]
    )


def _not_text(seq: int) -> str:
    return (
        f"row {seq} holds a field stored as something other than text: rewritten behind "
        "memwarden's back"
    )


class _TagMismatch(Exception):
    """A row whose tag does not verify: raised out of the fetch loop to be diagnosed."""

    def __init__(self, row: tuple[Any, ...], prev: str) -> None:
        self.row, self.prev = row, prev


def check_row(
    key: ChainKey,
    row: tuple[Any, ...],
    expected: int,
    prev: bytes,
    erased: dict[tuple[bytes, bytes], int],
) -> None:
    """One full row (``_row_query``, text as bytes) checked field by field, in the walk's
    order: present, tagged, stored as text, linked, its payload intact or lawfully erased."""
    (
        seq,
        etype,
        eid,
        project,
        action,
        actor,
        ts,
        digest,
        prev_tag,
        tag,
        body,
        erased_at,
        payload_seq,
        stored_as_text,
    ) = row
    if seq != expected:
        raise ChainBroken(expected, f"row {expected} is missing (deleted); the next row is {seq}")
    fields = (action, actor, digest, eid, etype, prev_tag, ts, tag)
    if not all(isinstance(value, bytes) for value in fields) or not (
        project is None or isinstance(project, bytes)
    ):
        # A number, or NULL, where text belongs (a table rebuilt, or a NOT NULL dropped,
        # behind memwarden's back): no header can be formatted from it, and it is not text.
        raise ChainBroken(seq, _not_text(seq))
    header = (
        _HEADER_NO_PROJECT % (action, actor, digest, eid, etype, prev_tag, seq, ts)
        if project is None
        else _HEADER % (action, actor, digest, eid, etype, prev_tag, project, seq, ts)
    )
    if b"\\" in header or not hmac.compare_digest(key.hex_mac(header), tag):
        # The exact canonical header (fields escaped), then, if still no match, the diagnosis.
        canonical = _canonical(row)
        if canonical is None or not hmac.compare_digest(key.hex_mac(canonical), tag):
            raise _TagMismatch(row, prev.decode("ascii"))
    if not stored_as_text:
        raise ChainBroken(seq, _not_text(seq))
    if prev_tag != prev:
        raise ChainBroken(
            seq,
            f"row {seq} does not follow row {seq - 1}: it belongs to another version of the "
            "chain (rows spliced or replayed from a copy)",
        )
    if body is not None:
        if not hmac.compare_digest(key.hex_mac(body), digest):
            raise ChainBroken(
                seq, f"row {seq}'s payload was edited: it no longer matches its digest"
            )
    elif payload_seq is None or erased_at is None or erased.get((etype, eid), 0) <= seq:
        raise ChainBroken(
            seq,
            blank_reason(
                seq,
                payload_seq is None,
                None if erased_at is None else erased_at.decode("utf-8", "replace"),
            ),
        )


class Walk:
    def __init__(self, conn: Connection, key: ChainKey, marks: Marks) -> None:
        self.conn = conn
        self.key = key
        self.marks = marks
        self.checked = 0
        # Rows the fast path could not accept that the reference path then did (fields that
        # need a JSON escape, an erased payload): counted, and logged after the walk.
        self.fallbacks = 0
        self.read_ahead = READ_AHEAD and conn.dialect.name == "postgresql"

    def run(self, from_seq: int, progress: Progress | None, until: int | None = None) -> Head:
        """Walk from ``from_seq`` to the end of the chain, or to ``until`` (a segment's last
        row, which must then be there)."""
        conn, key = self.conn, self.key
        prev = self._start(from_seq).encode("ascii")
        erased = _erasures(conn, key)
        rows = _fast_query(conn.dialect.name).where(L.c.seq >= from_seq)
        if until is not None:
            rows = rows.where(L.c.seq <= until)
        fallbacks_before = self.fallbacks
        try:
            # Left before the diagnosis below, which reads text as text again.
            with self._batches(rows) as batches:
                last = self._walk(batches, from_seq, prev, erased, progress)
        except _TagMismatch as bad:
            raise ChainBroken(
                bad.row[0], diagnose_tag(conn, key, _decoded(bad.row), bad.prev, self.marks)
            ) from None
        finally:
            if self.fallbacks > fallbacks_before:
                log.info("verify_reference_rows", rows=self.fallbacks - fallbacks_before)
        if until is not None and last.seq < until:
            raise ChainBroken(last.seq + 1, f"row {last.seq + 1} is missing (deleted)")
        return last

    def _batches(self, rows: Any) -> AbstractContextManager[Iterator[list[Any]]]:
        batches = driver_batches(self.conn, rows, BATCH)
        if self.read_ahead:
            return read_ahead(batches)
        return closing(batches)

    def part_rows(self, first: int, last: int) -> DriverQuery:
        """The fast query for a verify worker's part, led by the row before it (whose own tag
        links the part in), compiled here: the worker need not load the schema to build it."""
        rows = _fast_query(self.conn.dialect.name).where(
            L.c.seq >= max(1, first - 1), L.c.seq <= last
        )
        return DriverQuery.of(rows, self.conn.dialect)

    def _walk(
        self,
        batches: Iterator[list[Any]],
        from_seq: int,
        prev: bytes,
        erased: dict[tuple[bytes, bytes], int],
        progress: Progress | None,
    ) -> Head:
        with collector_paused():
            return self._walk_rows(batches, from_seq, prev, erased, progress)

    def _walk_rows(
        self,
        batches: Iterator[list[Any]],
        from_seq: int,
        prev: bytes,
        erased: dict[tuple[bytes, bytes], int],
        progress: Progress | None,
    ) -> Head:
        """The fast path (``fastpath.accept``) takes every row it can; any other row (a gap,
        a header that is NULL, holds a backslash or does not match, a broken link, a blank or
        edited payload) is read again in full and checked on the reference path, which fails
        it for the same reason, in the same order, as a walk of full rows would, or accepts
        it."""
        inner, outer = self.key.hmac_states()
        expected = from_seq
        last = Head(from_seq - 1, prev.decode("ascii"))
        reported = checked_before = self.checked
        try:
            for batch in batches:
                done = 0
                while True:
                    before = expected
                    expected, prev = accept(
                        batch[done:] if done else batch, inner, outer, expected, prev
                    )
                    done += expected - before
                    if done >= len(batch):
                        break
                    seq, _header, tag = batch[done][:3]
                    self._check_full_row(seq, expected, prev, erased)
                    self.fallbacks += 1
                    prev = tag
                    expected = seq + 1
                    done += 1
                # Every row that passed moved ``expected`` on by one.
                self.checked = checked_before + expected - from_seq
                last = Head(expected - 1, prev.decode("ascii"))
                if progress is not None and self.checked - reported >= PROGRESS_ROWS:
                    reported = self.checked
                    progress(self.checked)
        finally:
            self.checked = checked_before + expected - from_seq
        if progress is not None and self.checked != reported:
            progress(self.checked)
        return last

    def _check_full_row(
        self, seq: int, expected: int, prev: bytes, erased: dict[tuple[bytes, bytes], int]
    ) -> None:
        """The reference path: the row read again with every field (text as bytes), checked
        field by field; raises ``ChainBroken`` or ``_TagMismatch``, or returns if it holds."""
        query = _row_query(self.conn.dialect.name).where(L.c.seq == seq)
        with closing(driver_batches(self.conn, query, 1, "memwarden_verify_row")) as rows:
            row = next(iter(rows))[0]
        check_row(self.key, row, expected, prev, erased)

    def _start(self, from_seq: int) -> str:
        """The tag the walk starts from; the row before ``from_seq`` must itself be sound."""
        if from_seq == 1:
            return GENESIS_TAG
        row = self.conn.execute(
            _row_query(self.conn.dialect.name).where(L.c.seq == from_seq - 1)
        ).first()
        if row is not None:
            if not row[-1]:
                raise ChainBroken(from_seq - 1, _not_text(from_seq - 1))
            fields = RowFields._make(row[:11])
            if not hmac.compare_digest(self.key.tag(fields.header()), fields.tag):
                raise ChainBroken(
                    fields.seq,
                    diagnose_tag(self.conn, self.key, fields, fields.prev_tag, self.marks),
                )
            return fields.tag
        end = int(self.conn.execute(select(func.coalesce(func.max(L.c.seq), 0))).scalar_one())
        if from_seq - 1 <= end:
            raise ChainBroken(from_seq - 1, f"row {from_seq - 1} is missing (deleted)")
        if self.marks.highest() > end:
            raise ChainBroken(end + 1, short_chain_reason(self.conn, end, self.marks))
        raise InvalidInputError(
            f"--from {from_seq} is beyond the end of the chain (its last row is {end})"
        )


def _erasures(conn: Connection, key: ChainKey) -> dict[tuple[bytes, bytes], int]:
    """The newest authentic erasure row of each erased entity (forged ones do not count),
    keyed by entity type and id as the walk reads them (bytes)."""
    found: dict[tuple[bytes, bytes], int] = {}
    # A row with NULL where memwarden writes text is not one it wrote (the walk says so).
    erasures = select(*TAGGED).where(L.c.action == "erased", *(c.is_not(None) for c in NOT_NULL))
    for row in conn.execute(erasures):
        fields = RowFields._make([*row, None])
        if hmac.compare_digest(key.tag(fields.header()), fields.tag):
            entity = (fields.entity_type.encode(), fields.entity_id.encode())
            found[entity] = max(found.get(entity, 0), fields.seq)
    return found
