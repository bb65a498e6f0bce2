"""Verifying the chain: walk it (on several cores when it is long), then check that it still
holds the head the witness and an operator's anchor saw.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, select

from memwarden.audit import parallel
from memwarden.audit.chain import ChainKey
from memwarden.audit.diagnose import ChainBroken, short_chain_reason
from memwarden.audit.marks import Marks
from memwarden.audit.walk import Progress, Walk
from memwarden.audit.witness import Head, WitnessRecord
from memwarden.db import schema
from memwarden.errors import InvalidInputError

__all__ = ["ChainBroken", "Progress", "VerifyReport", "parse_anchor", "verify"]

L = schema.ledger


@dataclass
class VerifyReport:
    ok: bool
    rows_checked: int
    seconds: float
    first_bad_seq: int | None = None
    reason: str | None = None
    head: Head | None = None
    checked_against: list[str] = field(default_factory=list)
    # The witness behind the chain: {"rows", "from_seq", "to_seq", "since"} (see ``_lag``).
    lag: dict[str, Any] | None = None
    key_fingerprint: str | None = None

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
            "witness_lag": self.lag,
            "key_fingerprint": self.key_fingerprint,
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
    workers: int = 1,
    reread: Callable[[], WitnessRecord | None] | None = None,
) -> VerifyReport:
    """``workers`` above 1 lets a long walk run on that many processes (``audit.parallel``).
    ``reread`` reads the witness again after the walk: rows another writer committed just
    before the walk are witnessed right after their commit, and must not count as a lag."""
    if from_seq < 1:
        raise InvalidInputError(f"--from must be a sequence number of 1 or more, not {from_seq}")
    started = time.perf_counter()
    marks = Marks(
        witness.heads() if witness is not None else (), (anchor,) if anchor is not None else ()
    )
    walk = Walk(conn, key, marks)
    try:
        if witness is not None:
            if database_id is not None and witness.database_id != database_id:
                raise ChainBroken(None, "the witness belongs to another database")
            if witness.key_id != key.fingerprint():
                raise ChainBroken(None, "the witness was made with another ledger key")
        last = parallel.run(walk, from_seq, progress, workers)
        against = []
        if witness is not None:
            _check_mark(conn, last, witness.heads(), "witness")
            against.append("witness")
        if anchor is not None:
            _check_mark(conn, last, (anchor,), "anchor")
            against.append("anchor")
    except ChainBroken as broken:
        return VerifyReport(
            False,
            walk.checked,
            time.perf_counter() - started,
            broken.seq,
            broken.reason,
            key_fingerprint=key.fingerprint(),
        )
    lag = _lag(conn, last, witness, reread) if witness is not None else None
    if lag is not None:
        return VerifyReport(
            False,
            walk.checked,
            time.perf_counter() - started,
            lag["from_seq"],
            f"the witness lags the chain by {lag['rows']} row(s) (rows {lag['from_seq']} to "
            f"{lag['to_seq']}, the first committed at {lag['since']}): those rows could be cut, "
            "or the database rolled back over them, unnoticed. The witness could not be "
            "written (see /health), or a process stopped between a commit and its witness; "
            "the next successful write catches it up",
            head=last,
            checked_against=against,
            lag=lag,
            key_fingerprint=key.fingerprint(),
        )
    return VerifyReport(
        True,
        walk.checked,
        time.perf_counter() - started,
        head=last,
        checked_against=against,
        key_fingerprint=key.fingerprint(),
    )


LAG_GRACE_SECONDS = 0.5


def _lag(
    conn: Connection,
    last: Head,
    witness: WitnessRecord,
    reread: Callable[[], WitnessRecord | None] | None,
) -> dict[str, Any] | None:
    """How far the chain runs past the witness, or None when it does not.

    A writer puts its head in the witness right after its commit, so a row the walk saw may
    be witnessed an instant later: the witness is read again for a short grace period before a
    lag is reported."""
    seen = witness.head.seq
    deadline = time.monotonic() + LAG_GRACE_SECONDS
    while seen < last.seq and reread is not None and time.monotonic() < deadline:
        time.sleep(0.02)
        again = reread()
        if again is not None:
            seen = max(seen, again.head.seq)
    if seen >= last.seq:
        return None
    since = conn.execute(select(L.c.ts).where(L.c.seq == seen + 1)).scalar_one_or_none()
    return {
        "rows": last.seq - seen,
        "from_seq": seen + 1,
        "to_seq": last.seq,
        "since": str(since) if since is not None else None,
    }


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
