"""The erase transaction: every copy of the text the database holds, in one transaction.

Reached, in one write transaction with SQLite's ``secure_delete`` on (freed bytes are
overwritten) and FTS5's ``secure-delete`` option (migration 0011: the erased terms leave the
full-text index at once, at the cost of the erased rows only):
- each memory's row (content blanked, status ``erased``) and every ledger payload of it;
- the interactions and source chunks it came from (blanked, or only its text cut out of them,
  or kept: ``sources``), with their ledger payloads (a capture's payload holds digests of its
  text, which would confirm a guess);
- the operation log's rows that hold the text (``MEMWARDEN_OPLOG_RAW=1``) and the alerts whose
  title, message or context quote it;
- the embeddings of the memory, once they exist (issue 17: delete them in ``_erase_memory``).
The ledger keeps its tagged rows (the chain still verifies) and records each erasure with the
reason and no content. The receipt row commits with it, ``pending`` until scrub.py has made
sure no old copy is left on disk.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy import Connection, or_, select, update

from memwarden.audit import records
from memwarden.audit.actor import current_actor
from memwarden.audit.chain import format_ts
from memwarden.core import lifecycle, validate, vectors
from memwarden.core.erasure import receipt as receipts
from memwarden.core.erasure import select as selecting
from memwarden.core.erasure.receipt import Erased, EraseReceipt
from memwarden.core.memories import _write, load
from memwarden.core.models import Memory
from memwarden.core.runtime import Mutation, Runtime
from memwarden.db import schema

L = schema.ledger
P = schema.ledger_payloads
I = schema.interactions  # noqa: E741
C = schema.source_chunks
OPLOG = schema.operation_log
ALERTS = schema.alerts
CUT = "[erased]"
# Shorter texts are not searched for in the logs and alerts: cutting every "the" out of them
# would destroy more than it protects.
MIN_NEEDLE_CHARS = 4


def run(
    rt: Runtime,
    reason: str,
    scope: dict[str, Any],
    choose: Callable[[Connection], selecting.Selection],
    *,
    strict: bool,
) -> EraseReceipt:
    """Erase what ``choose(conn) -> Selection`` picks, inside the transaction. ``strict``:
    every selected memory must be erasable (an erase of one); otherwise erased ones are
    skipped (a bulk erase met them already)."""
    reason = validate.content(rt.settings, reason, what="the reason")
    with rt.mutation() as m:  # SQLite zeroes what it frees (engine.py)
        selection = choose(m.conn)
        erased = Erased()
        texts: list[str] = []
        last: Memory | None = None
        for memory_id in selection.memories:
            memory = load(m.conn, memory_id, for_update=True)
            if memory.status == lifecycle.ERASED and not strict:
                continue
            lifecycle.check("erase", memory.id, memory.status)
            texts += _versions(m.conn, memory)
            last = _erase_memory(m, memory, reason)
            erased.memories.append(memory.id)
        for interaction_id in selection.blank_interactions:
            texts += _erase_interaction(m, interaction_id, reason, None)
            erased.interactions.append(interaction_id)
        for interaction_id in selection.span_interactions:
            if _erase_interaction(m, interaction_id, reason, texts):
                erased.interactions.append(interaction_id)
        for chunk_id in selection.blank_chunks:
            texts += _erase_chunk(m, chunk_id, reason, None)
            erased.chunks.append(chunk_id)
        for chunk_id in selection.span_chunks:
            if _erase_chunk(m, chunk_id, reason, texts):
                erased.chunks.append(chunk_id)
        needles = _needles(texts)
        erased.oplog_rows = _scrub_oplog(m.conn, needles)
        erased.alerts = _scrub_alerts(m.conn, needles)
        receipt = EraseReceipt(
            id=0,
            requested_at=m.now,
            actor=current_actor(),
            reason=reason,
            scope=scope,
            erased=erased,
            status=receipts.PENDING,
            pending=[receipts.SQLITE_WAL if rt.store.is_sqlite else receipts.PG_DEAD_ROWS],
            memory=last if strict else None,
            horizon=_horizon(m.conn),
        )
        receipt.id = receipts.insert_receipt(m.conn, receipt)
    return receipt


def _horizon(conn: Connection) -> str | None:
    """PostgreSQL: this transaction's id; snapshots older than it may still see the text."""
    if conn.dialect.name != "postgresql":
        return None
    return str(conn.exec_driver_sql("SELECT pg_current_xact_id()::text").scalar_one())


def _versions(conn: Connection, memory: Memory) -> list[str]:
    """Every content the memory ever had (its ledger payloads keep the old ones)."""
    found = [memory.content]
    for record in records.history(conn, "memory", str(memory.id)):
        for snapshot in (record.before, record.after):
            if snapshot and isinstance(snapshot.get("content"), str):
                found.append(snapshot["content"])
    return found


def _blank_payloads(m: Mutation, entity_type: str, entity_id: int) -> list[int]:
    seqs = [
        int(seq)
        for seq in m.conn.execute(
            select(L.c.seq).where(L.c.entity_type == entity_type, L.c.entity_id == str(entity_id))
        ).scalars()
    ]
    if seqs:
        m.conn.execute(
            update(P).where(P.c.seq.in_(seqs)).values(body=None, erased_at=format_ts(m.now))
        )
    return seqs


def _erase_memory(m: Mutation, memory: Memory, reason: str) -> Memory:
    # The one place an erase writes a memory row (memories._write), so whatever keeps rows
    # valid there (issue 14's row MACs) keeps the erased row valid too.
    after = _write(
        m,
        memory,
        content="",
        content_hash=f"erased:{memory.id}",
        status=lifecycle.ERASED,
        metadata=None,  # the caller's metadata may quote the text as well
    )
    # Its vectors go in the same transaction: an embedding is a copy of the content.
    vectors.delete_items(m.conn, vectors.MEMORY, [memory.id])
    seqs = _blank_payloads(m, "memory", memory.id)
    m.record(
        "memory",
        memory.id,
        memory.project,
        "erased",
        None,
        after.snapshot(),
        reason,
        {"erased_seqs": seqs},
    )
    return after


def _cut(text: str, needles: Iterable[str]) -> str:
    for needle in sorted({n for n in needles if n.strip()}, key=len, reverse=True):
        text = re.sub(re.escape(needle), CUT, text, flags=re.IGNORECASE)
    return text


def _erase_interaction(
    m: Mutation, interaction_id: int, reason: str, span: list[str] | None
) -> list[str]:
    """Blank the interaction (``span`` None) or cut ``span``'s texts out of it. Returns the
    texts removed (empty when nothing changed)."""
    row = m.conn.execute(select(I).where(I.c.id == interaction_id).with_for_update()).first()
    if row is None:
        return []
    if span is None:
        prompt, response = "", ""
    else:
        prompt, response = _cut(row.prompt, span), _cut(row.response, span)
    if (prompt, response) == (row.prompt, row.response):
        return []
    m.conn.execute(
        update(I).where(I.c.id == interaction_id).values(prompt=prompt, response=response)
    )
    seqs = _blank_payloads(m, "interaction", interaction_id)
    m.record(
        "interaction",
        interaction_id,
        row.project,
        "erased",
        None,
        {"id": interaction_id, "prompt_chars": len(prompt), "response_chars": len(response)},
        reason,
        {"erased_seqs": seqs, "span": span is not None},
    )
    return [row.prompt, row.response]


def _erase_chunk(m: Mutation, chunk_id: int, reason: str, span: list[str] | None) -> list[str]:
    row = m.conn.execute(select(C).where(C.c.id == chunk_id).with_for_update()).first()
    if row is None:
        return []
    if span is None:
        heading, content = "", ""
    else:
        heading, content = _cut(row.heading, span), _cut(row.content, span)
    if (heading, content) == (row.heading, row.content):
        return []
    m.conn.execute(update(C).where(C.c.id == chunk_id).values(heading=heading, content=content))
    # The chunk's vector is a copy of the old text: it goes too (re-embedded from what is left).
    vectors.delete_items(m.conn, vectors.CHUNK, [chunk_id])
    m.record(
        "chunk",
        chunk_id,
        row.project,
        "erased",
        None,
        {"id": chunk_id, "document_id": int(row.document_id), "chars": len(content)},
        reason,
        {"span": span is not None},
    )
    return [row.heading, row.content]


def _needles(texts: Iterable[str]) -> list[str]:
    """The texts as the logs may hold them: as written, and JSON-escaped (the operation log
    and the alerts keep JSON)."""
    found: set[str] = set()
    for text in texts:
        if len(text.strip()) < MIN_NEEDLE_CHARS:
            continue
        found.add(text)
        found.add(json.dumps(text)[1:-1])
        found.add(json.dumps(text, ensure_ascii=False)[1:-1])
    return sorted(found, key=len, reverse=True)


def _scrub_oplog(conn: Connection, needles: list[str]) -> list[int]:
    """Operation-log rows that hold the text lose their request, response and metadata."""
    if not needles:
        return []
    ids: set[int] = set()
    for needle in needles:
        hits = conn.execute(
            select(OPLOG.c.id).where(
                or_(
                    *(
                        column.icontains(needle, autoescape=True)
                        for column in (OPLOG.c.request, OPLOG.c.response, OPLOG.c.metadata)
                    )
                )
            )
        ).scalars()
        ids.update(int(i) for i in hits)
    if ids:
        conn.execute(
            update(OPLOG)
            .where(OPLOG.c.id.in_(sorted(ids)))
            .values(request=None, response=None, metadata=json.dumps({"erased": True}))
        )
    return sorted(ids)


def _scrub_alerts(conn: Connection, needles: list[str]) -> list[int]:
    """Alerts that quote the text keep their row with the text cut out."""
    if not needles:
        return []
    changed: list[int] = []
    for needle in needles:
        rows = conn.execute(
            select(ALERTS.c.id, ALERTS.c.title, ALERTS.c.message, ALERTS.c.context).where(
                or_(
                    *(
                        column.icontains(needle, autoescape=True)
                        for column in (ALERTS.c.title, ALERTS.c.message, ALERTS.c.context)
                    )
                )
            )
        ).all()
        for row in rows:
            conn.execute(
                update(ALERTS)
                .where(ALERTS.c.id == row.id)
                .values(
                    title=_cut(row.title, needles),
                    message=_cut(row.message, needles),
                    context=_cut(row.context, needles),
                )
            )
            changed.append(int(row.id))
    return sorted(set(changed))
