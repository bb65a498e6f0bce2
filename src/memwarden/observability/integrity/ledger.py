"""Ledger chain breaks: ``audit verify`` from where the previous scan left off.

An incremental scan verifies the rows added since the previous scan's verified head, and holds
the chain to that head (as ``audit verify --anchor`` does), so a chain cut short, rolled back or
rewritten under it is caught too; a row edited in place behind the verified point is found by
``--full`` (or ``audit verify``), which walks the whole chain against the witness alone — that is
also how an operator who reset the witness on purpose starts afresh. A break is never repaired
here, and the verified point goes back to just before it, so every later scan reports it again
until a person has dealt with it.
"""

from __future__ import annotations

from sqlalchemy import Connection, select

from memwarden.audit import verify
from memwarden.audit.chain import GENESIS_TAG
from memwarden.audit.witness import Head
from memwarden.db import schema
from memwarden.observability.integrity.context import CheckOutcome, ScanContext
from memwarden.observability.integrity.findings import Finding

L = schema.ledger


def check_ledger_chain(ctx: ScanContext) -> CheckOutcome:
    previous = ctx.previous
    start, anchor = 1, None
    if not ctx.full and previous is not None and previous.ledger_verified_tag is not None:
        start = previous.ledger_verified_seq + 1
        if previous.ledger_verified_seq > 0:
            anchor = Head(previous.ledger_verified_seq, previous.ledger_verified_tag)
    report = verify.verify(
        ctx.conn,
        ctx.chain.key,
        witness=ctx.chain.witness,
        database_id=ctx.chain.database_id,
        from_seq=start,
        anchor=anchor,
        workers=ctx.chain.workers,
        reread=ctx.chain.reread,
    )
    if report.ok:
        assert report.head is not None
        return CheckOutcome(
            scanned=report.rows_checked,
            verified_seq=report.head.seq,
            verified_tag=report.head.tag,
        )
    where = f"at row {report.first_bad_seq}: " if report.first_bad_seq is not None else ""
    finding = Finding(
        "ledger_chain",
        "critical",
        1,
        (report.first_bad_seq,) if report.first_bad_seq is not None else (),
        f"the ledger chain is broken {where}{report.reason}. Never repaired automatically: "
        "run `memwarden audit verify` and see docs/ledger.md",
    )
    # The verified point goes back to just before the break (or stays where it was), so the
    # next incremental scan walks into the break again.
    if report.first_bad_seq is not None:
        seq = max(report.first_bad_seq - 1, 0)
        verified_seq, verified_tag = seq, _tag_at(ctx.conn, seq)
    elif previous is not None:
        verified_seq, verified_tag = previous.ledger_verified_seq, previous.ledger_verified_tag
    else:
        verified_seq, verified_tag = 0, None
    return CheckOutcome(
        findings=[finding],
        scanned=report.rows_checked,
        verified_seq=verified_seq,
        verified_tag=verified_tag,
    )


def _tag_at(conn: Connection, seq: int) -> str | None:
    if seq == 0:
        return GENESIS_TAG
    tag = conn.execute(select(L.c.tag).where(L.c.seq == seq)).scalar_one_or_none()
    return str(tag) if tag is not None else None
