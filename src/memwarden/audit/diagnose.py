"""Naming what happened to a ledger row that fails verification.

Verify finds *that* a row is bad in its fast pass; these functions, run once on the first bad
row, say *how*: a row copied from another entity or project (its tag is another row's), an older
row replayed over a newer one, rows reordered or renumbered after a deletion (the tag verifies
under another sequence number), a forged row past the witnessed head, an edited row (and
whether its payload digest was recomputed without the key), or a chain cut short (a truncated
tail, or a whole database put back from an older copy).
"""

from __future__ import annotations

from hashlib import sha256
from typing import Any, NamedTuple

from sqlalchemy import Connection, func, select

from memwarden.audit.chain import GENESIS_TAG, ChainKey, format_ts, header_bytes
from memwarden.audit.marks import Marks
from memwarden.db import schema

L = schema.ledger
MOVE_WINDOW = 16


class ChainBroken(Exception):
    def __init__(self, seq: int | None, reason: str) -> None:
        super().__init__(reason)
        self.seq = seq
        self.reason = reason


class RowFields(NamedTuple):
    seq: int
    entity_type: str
    entity_id: str
    project: str | None
    action: str
    actor: str
    ts: str
    payload_digest: str
    prev_tag: str
    tag: str
    body: str | None

    def header(self, seq: int | None = None) -> bytes:
        return header_bytes(
            self.seq if seq is None else seq,
            self.entity_type,
            self.entity_id,
            self.project,
            self.action,
            self.actor,
            self.ts,
            self.payload_digest,
            self.prev_tag,
        )

    def entity(self) -> str:
        return f"{self.entity_type} {self.entity_id}"


def diagnose_tag(
    conn: Connection, key: ChainKey, row: RowFields, walk_prev: str, marks: Marks
) -> str:
    """Why ``row``'s tag does not verify at its place in the chain."""
    seq = row.seq
    twin = _twin(conn, L.c.tag, row.tag, seq)
    if twin is not None:
        return _copy_reason(row, twin, "its tag")
    moved = _moved_from(conn, key, row)
    if moved is not None:
        if row.prev_tag == GENESIS_TAG or _twin(conn, L.c.tag, row.prev_tag, seq) is not None:
            return f"rows were reordered: row {seq} holds the row written as row {moved}"
        return (
            f"a row was deleted and the rows after it renumbered: row {seq} holds the row "
            f"written as row {moved}, whose predecessor is gone"
        )
    twin = _twin(conn, L.c.payload_digest, row.payload_digest, seq)
    if twin is not None:
        return _copy_reason(row, twin, "its payload digest") + ", under a forged tag"
    unkeyed = ""
    if row.tag == sha256(row.header()).hexdigest():
        unkeyed = "; its tag is a plain SHA-256 of its fields, made without the key"
    named = marks.named()
    if named and seq > marks.highest():
        return (
            f"row {seq} is forged: appended after the witnessed head (row {marks.highest()}), "
            f"and its tag does not verify under the ledger key{unkeyed}"
        )
    detail = _payload_detail(key, row)
    if row.prev_tag != walk_prev and seq > 1:
        detail += f"; its link to row {seq - 1} was changed too"
    verb = "was edited" if named else "was edited or forged"
    return f"row {seq} {verb}: its fields no longer match its tag{detail}{unkeyed}"


def blank_reason(seq: int, payload_missing: bool, erased_at: str | None) -> str:
    if payload_missing:
        return f"row {seq}'s payload was deleted without a recorded erasure"
    if erased_at is None:
        return f"row {seq}'s payload was blanked without a recorded erasure"
    return (
        f"row {seq}'s payload was blanked (marked erased at {erased_at}) but no later erasure "
        "of its entity is recorded"
    )


def short_chain_reason(conn: Connection, end: int, marks: Marks) -> str:
    """The chain stops before the head a witness or anchor saw: cut, or the database put back."""
    name, mark = max(marks.named(), key=lambda item: item[1].seq)
    last_ts = conn.execute(select(L.c.ts).where(L.c.seq == end)).scalar_one_or_none()
    newest = _newest_live_change(conn)
    if newest is not None and (last_ts is None or newest > str(last_ts)):
        kind = (
            "truncated tail: ledger rows were cut from its end (the live tables hold changes "
            "made after its last row)"
        )
    else:
        kind = (
            "whole-database rollback: the database was put back from an older copy (or its "
            "tail was cut together with the live rows it recorded)"
        )
    return f"the chain ends at row {end} but the {name} saw row {mark.seq}: {kind}"


def _twin(conn: Connection, column: Any, value: str, seq: int) -> Any:
    return conn.execute(
        select(L.c.seq, L.c.entity_type, L.c.entity_id, L.c.project)
        .where(column == value, L.c.seq != seq)
        .order_by(L.c.seq)
        .limit(1)
    ).first()


def _copy_reason(row: RowFields, twin: Any, what: str) -> str:
    seq, source = row.seq, int(twin.seq)
    if (twin.entity_type, twin.entity_id) == (row.entity_type, row.entity_id):
        if source < seq:
            return (
                f"an older row was replayed over a newer one: row {seq} repeats row {source} "
                f"of {row.entity()} ({what} is row {source}'s)"
            )
        return f"row {seq} duplicates row {source} of {row.entity()} ({what} is row {source}'s)"
    other = "project" if twin.project != row.project else twin.entity_type
    return (
        f"row {seq} was copied from another {other}: {what} is that of row {source} "
        f"({twin.entity_type} {twin.entity_id}, project {twin.project}), relabelled as "
        f"{row.entity()} (project {row.project})"
    )


def _moved_from(conn: Connection, key: ChainKey, row: RowFields) -> int | None:
    """The sequence number the row was written under, if it sits at another one now."""
    candidates = [row.seq + step * sign for step in range(1, MOVE_WINDOW + 1) for sign in (1, -1)]
    predecessor = conn.execute(select(L.c.seq).where(L.c.tag == row.prev_tag)).scalar()
    if predecessor is not None:
        candidates.insert(0, int(predecessor) + 1)
    for candidate in candidates:
        if candidate >= 1 and candidate != row.seq and key.tag(row.header(candidate)) == row.tag:
            return candidate
    return None


def _payload_detail(key: ChainKey, row: RowFields) -> str:
    if row.body is None or key.payload_digest(row.body) == row.payload_digest:
        return ""
    if row.payload_digest == sha256(row.body.encode("utf-8")).hexdigest():
        return "; its payload was edited too, and its digest recomputed without the key"
    return "; its payload and its digest were changed too"


def _newest_live_change(conn: Connection) -> str | None:
    """The newest change the live tables carry, as ledger-timestamp text."""
    columns = (
        schema.memories.c.updated_at,
        schema.project_state.c.updated_at,
        schema.documents.c.updated_at,
        schema.projects.c.created_at,
    )
    stamps = [conn.execute(select(func.max(column))).scalar() for column in columns]
    found = [format_ts(stamp) for stamp in stamps if stamp is not None]
    return max(found) if found else None
