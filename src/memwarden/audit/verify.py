"""Verifying the chain: re-derive every tag and payload digest, then check the head witness.

Per row the work is two HMACs over bytes already in hand (the stored payload text is hashed
as it is, never re-serialised) and one string format for the header. Only when a row fails is
more work done, to name what happened to it (``audit.diagnose``).
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, func, select

from memwarden.audit.chain import GENESIS_TAG, ChainKey, header_bytes
from memwarden.audit.diagnose import (
    ChainBroken,
    Marks,
    RowFields,
    blank_reason,
    diagnose_tag,
    short_chain_reason,
)
from memwarden.audit.witness import Head, WitnessRecord
from memwarden.db import schema
from memwarden.errors import InvalidInputError

__all__ = ["ChainBroken", "Progress", "VerifyReport", "parse_anchor", "verify"]

L = schema.ledger
P = schema.ledger_payloads
BATCH = 20_000

Progress = Callable[[int], None]


@dataclass
class VerifyReport:
    ok: bool
    rows_checked: int
    seconds: float
    first_bad_seq: int | None = None
    reason: str | None = None
    head: Head | None = None
    checked_against: list[str] = field(default_factory=list)

    @property
    def rows_per_second(self) -> float:
        return self.rows_checked / self.seconds if self.seconds > 0 else float(self.rows_checked)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "rows_checked": self.rows_checked,
            "seconds": round(self.seconds, 6),
            "rows_per_second": round(self.rows_per_second),
            "first_bad_seq": self.first_bad_seq,
            "reason": self.reason,
            "head": {"seq": self.head.seq, "tag": self.head.tag} if self.head else None,
            "checked_against": self.checked_against,
        }


def parse_anchor(text: str) -> Head:
    seq_text, sep, tag = text.strip().partition(":")
    if not sep or not seq_text.isdigit() or len(tag) != 64 or not _is_hex(tag):
        raise InvalidInputError(f"malformed anchor {text!r}: expected SEQ:TAG (TAG 64 hex digits)")
    return Head(int(seq_text), tag.lower())


def _is_hex(text: str) -> bool:
    try:
        bytes.fromhex(text)
    except ValueError:
        return False
    return True


def verify(
    conn: Connection,
    key: ChainKey,
    *,
    witness: WitnessRecord | None,
    database_id: str | None,
    from_seq: int = 1,
    anchor: Head | None = None,
    progress: Progress | None = None,
) -> VerifyReport:
    if from_seq < 1:
        raise InvalidInputError(f"--from must be a sequence number of 1 or more, not {from_seq}")
    started = time.perf_counter()
    marks = Marks(
        witness.heads() if witness is not None else (), (anchor,) if anchor is not None else ()
    )
    walk = _Walk(conn, key, marks)
    try:
        if witness is not None:
            if database_id is not None and witness.database_id != database_id:
                raise ChainBroken(None, "the witness belongs to another database")
            if witness.key_id != key.fingerprint():
                raise ChainBroken(None, "the witness was made with another ledger key")
        last = walk.run(from_seq, progress)
        against = []
        if witness is not None:
            _check_mark(conn, last, witness.heads(), "witness")
            against.append("witness")
        if anchor is not None:
            _check_mark(conn, last, (anchor,), "anchor")
            against.append("anchor")
    except ChainBroken as broken:
        return VerifyReport(
            False, walk.checked, time.perf_counter() - started, broken.seq, broken.reason
        )
    return VerifyReport(
        True, walk.checked, time.perf_counter() - started, head=last, checked_against=against
    )


def _row_query() -> Any:
    return (
        select(
            L.c.seq, L.c.entity_type, L.c.entity_id, L.c.project, L.c.action, L.c.actor, L.c.ts,
            L.c.payload_digest, L.c.prev_tag, L.c.tag, P.c.body, P.c.erased_at, P.c.seq,
        )
        .select_from(L.outerjoin(P, P.c.seq == L.c.seq))
        .order_by(L.c.seq)
    )


def _driver_batches(conn: Connection, query: Any, size: int) -> Iterator[list[Any]]:
    """The query's rows as the driver's plain tuples, in batches, on the caller's transaction.

    The walk's per-row budget is a few microseconds; building SQLAlchemy rows would take a
    good part of it. PostgreSQL streams through a server-side cursor."""
    compiled = query.compile(dialect=conn.dialect)
    params = compiled.construct_params()
    args: Any = tuple(params[name] for name in compiled.positiontup) if compiled.positional else params
    driver: Any = conn.connection.dbapi_connection
    postgres = conn.dialect.name == "postgresql"
    cursor = driver.cursor(name="memwarden_verify") if postgres else driver.cursor()
    try:
        cursor.execute(str(compiled), args)
        while batch := cursor.fetchmany(size):
            yield batch
    finally:
        cursor.close()


class _Walk:
    def __init__(self, conn: Connection, key: ChainKey, marks: Marks) -> None:
        self.conn = conn
        self.key = key
        self.marks = marks
        self.checked = 0

    def run(self, from_seq: int, progress: Progress | None) -> Head:
        conn, key = self.conn, self.key
        prev = self._start(from_seq)
        expected = from_seq
        erased = _erasures(conn, key)
        secret_tag, secret_digest = key.tag, key.payload_digest
        compare = hmac.compare_digest
        last = Head(from_seq - 1, prev)
        for batch in _driver_batches(conn, _row_query().where(L.c.seq >= from_seq), BATCH):
            for row in batch:
                (seq, etype, eid, project, action, actor, ts, digest, prev_tag, tag, body,
                 erased_at, payload_seq) = row
                if seq != expected:
                    raise ChainBroken(
                        expected, f"row {expected} is missing (deleted); the next row is {seq}"
                    )
                if not compare(secret_tag(header_bytes(
                    seq, etype, eid, project, action, actor, ts, digest, prev_tag
                )), tag):
                    raise ChainBroken(seq, diagnose_tag(conn, key, RowFields._make(row[:11]), prev, self.marks))
                if prev_tag != prev:
                    raise ChainBroken(
                        seq,
                        f"row {seq} does not follow row {seq - 1}: it belongs to another version "
                        "of the chain (rows spliced or replayed from a copy)",
                    )
                if body is not None:
                    if not compare(secret_digest(body), digest):
                        raise ChainBroken(
                            seq, f"row {seq}'s payload was edited: it no longer matches its digest"
                        )
                elif payload_seq is None or erased_at is None or erased.get((etype, eid), 0) <= seq:
                    raise ChainBroken(seq, blank_reason(seq, payload_seq is None, erased_at))
                prev = tag
                expected = seq + 1
                self.checked += 1
            last = Head(expected - 1, prev)
            if progress is not None:
                progress(self.checked)
        return last

    def _start(self, from_seq: int) -> str:
        """The tag the walk starts from; the row before ``from_seq`` must itself be sound."""
        if from_seq == 1:
            return GENESIS_TAG
        row = self.conn.execute(_row_query().where(L.c.seq == from_seq - 1)).first()
        if row is not None:
            fields = RowFields._make(row[:11])
            if not hmac.compare_digest(self.key.tag(fields.header()), fields.tag):
                raise ChainBroken(
                    fields.seq, diagnose_tag(self.conn, self.key, fields, fields.prev_tag, self.marks)
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


def _erasures(conn: Connection, key: ChainKey) -> dict[tuple[str, str], int]:
    """The newest authentic erasure row of each erased entity (forged ones do not count)."""
    found: dict[tuple[str, str], int] = {}
    rows = conn.execute(
        select(
            L.c.seq, L.c.entity_type, L.c.entity_id, L.c.project, L.c.action, L.c.actor, L.c.ts,
            L.c.payload_digest, L.c.prev_tag, L.c.tag,
        ).where(L.c.action == "erased")
    )
    for row in rows:
        fields = RowFields._make([*row, None])
        if hmac.compare_digest(key.tag(fields.header()), fields.tag):
            entity = (fields.entity_type, fields.entity_id)
            found[entity] = max(found.get(entity, 0), fields.seq)
    return found


def _tag_at(conn: Connection, seq: int) -> str | None:
    tag = conn.execute(select(L.c.tag).where(L.c.seq == seq)).scalar_one_or_none()
    return str(tag) if tag is not None else None


def _check_mark(conn: Connection, last: Head, heads: tuple[Head, ...], name: str) -> None:
    """The chain must hold the newest head the mark saw; if not, say where it parted from it.

    ``heads`` is oldest first (a witness keeps a short trail of earlier heads)."""
    mark = heads[-1]
    end = last.seq
    agree: int | None = None
    lowest_bad: int | None = None
    for head in reversed(heads):
        if head.seq > end:
            continue  # beyond the chain's end: says nothing about rewriting
        if head.seq == 0 or _tag_at(conn, head.seq) == head.tag:
            agree = head.seq
            break
        lowest_bad = head.seq
    if lowest_bad is None:
        if mark.seq <= end:
            return
        raise ChainBroken(end + 1, short_chain_reason(conn, end, Marks.of(name, mark)))
    if agree is None:
        first, where = lowest_bad, f"at or before row {lowest_bad}"
    elif lowest_bad == agree + 1:
        first, where = lowest_bad, f"from row {lowest_bad}"
    else:
        first, where = agree + 1, f"from a row between {agree + 1} and {lowest_bad}"
    beyond = f" (it saw row {mark.seq}; the chain ends at row {end})" if mark.seq > end else ""
    raise ChainBroken(
        first,
        f"the chain differs from what the {name} saw {where}{beyond}: the database was rolled "
        "back and rewritten",
    )
