"""Putting a memory back to an earlier version, and erasing one for privacy."""

from __future__ import annotations

import sqlite3
from typing import Any

import structlog
from sqlalchemy import select, text, update
from sqlalchemy.exc import SQLAlchemyError

from memwarden.audit import records
from memwarden.audit.chain import format_ts
from memwarden.core import lifecycle, validate, vectors
from memwarden.core.memories import _refuse_duplicate, _write, load
from memwarden.core.models import Memory
from memwarden.core.runtime import Mutation, Runtime
from memwarden.core.text import content_hash
from memwarden.db import schema
from memwarden.errors import IllegalTransitionError, InvalidInputError

log = structlog.get_logger(__name__)

# The fields a revert restores; counters and timestamps keep telling the truth about today.
REVERTED_FIELDS = ("content", "type", "confidence", "status", "source_chunk_id", "superseded_by")


def revert(rt: Runtime, memory_id: int, to_seq: int, note: str | None = None) -> Memory:
    note = validate.note(note)
    with rt.mutation() as m:
        memory = load(m.conn, memory_id, for_update=True)
        if memory.status == lifecycle.ERASED:
            raise IllegalTransitionError(
                memory.id, memory.status, "revert", "erased content is gone"
            )
        target = records.at_seq(m.conn, to_seq)
        if target is None:
            raise InvalidInputError(f"ledger row {to_seq} does not exist")
        if target.entity_type != "memory" or target.entity_id != str(memory_id):
            raise InvalidInputError(
                f"ledger row {to_seq} belongs to {target.entity_type} {target.entity_id}, "
                f"not memory {memory_id}"
            )
        if target.erased or target.after is None:
            raise InvalidInputError(f"ledger row {to_seq} holds no version to revert to")
        wanted = {name: target.after[name] for name in REVERTED_FIELDS}
        if not lifecycle.can_move(memory.status, wanted["status"]):
            raise IllegalTransitionError(
                memory.id,
                memory.status,
                "revert",
                f"the version at {to_seq} is {wanted['status']} and the lifecycle does not "
                f"allow {memory.status} -> {wanted['status']}",
            )
        validate.memory_type(rt.settings, wanted["type"])
        changes = {name: value for name, value in wanted.items() if getattr(memory, name) != value}
        if not changes:
            raise InvalidInputError(f"memory {memory_id} already matches the version at {to_seq}")
        if "content" in changes:
            changes["content_hash"] = content_hash(changes["content"])
        chunk = changes.get("source_chunk_id")
        if chunk is not None:
            _check_cited_chunk(m, chunk, to_seq, target.ts)
        _refuse_duplicate(m.conn, memory, changes)
        after = _write(m, memory, **changes)
        m.record(
            "memory",
            memory.id,
            memory.project,
            "reverted",
            memory.snapshot(),
            after.snapshot(),
            note,
            {"to_seq": to_seq},
        )
        return after


def _check_cited_chunk(m: Mutation, chunk: int, to_seq: int, version_ts: str) -> None:
    """The chunk a version cited must still be that chunk: on SQLite a re-ingest may hand a
    replaced chunk's id to a new one, so a chunk newer than the version is another chunk."""
    created = m.conn.execute(
        select(schema.source_chunks.c.created_at).where(schema.source_chunks.c.id == chunk)
    ).scalar_one_or_none()
    if created is None or format_ts(created) > version_ts:
        raise InvalidInputError(
            f"the version at {to_seq} cites source chunk {chunk}, which no longer exists "
            "(its document was re-ingested or removed)"
        )


def erase(rt: Runtime, memory_id: int, reason: str) -> Memory:
    """Remove a memory's content from the live tables, the index and every ledger payload.

    The tagged ledger rows stay (the chain still verifies); their payloads are blanked and the
    erasure is itself recorded, with the reason and no content."""
    reason = validate.content(rt.settings, reason, what="the reason")
    with rt.mutation(secure_delete=True) as m:
        memory = load(m.conn, memory_id, for_update=True)
        lifecycle.check("erase", memory.id, memory.status)
        after = _write(
            m,
            memory,
            content="",
            content_hash=f"erased:{memory.id}",
            status=lifecycle.ERASED,
        )
        ledger, payloads = schema.ledger, schema.ledger_payloads
        seqs = [
            int(seq)
            for seq in m.conn.execute(
                select(ledger.c.seq).where(
                    ledger.c.entity_type == "memory", ledger.c.entity_id == str(memory.id)
                )
            ).scalars()
        ]
        if seqs:
            m.conn.execute(
                update(payloads)
                .where(payloads.c.seq.in_(seqs))
                .values(body=None, erased_at=format_ts(m.now))
            )
        # Its vectors go in the same transaction: an embedding is a copy of the content.
        vectors.delete_items(m.conn, vectors.MEMORY, [memory.id])
        if m.conn.dialect.name == "sqlite":
            # The full-text index keeps the erased words in its old segments (and in the
            # delete markers) until they are merged away: merge now, with secure_delete on.
            m.conn.execute(text("INSERT INTO memories_fts(memories_fts) VALUES ('optimize')"))
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
    _checkpoint(rt)
    return after


def _checkpoint(rt: Runtime) -> None:
    """Move the erasing transaction out of SQLite's write-ahead log and empty the log, whose
    older frames still hold the erased pages. Fail-open: the erasure has committed."""
    if not rt.store.is_sqlite:
        return
    try:
        with rt.store.engine.connect() as conn:
            raw: Any = conn.connection.dbapi_connection
            busy, _, _ = raw.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    except (sqlite3.Error, SQLAlchemyError) as exc:
        log.error("erase_checkpoint_failed", error=str(exc))
        return
    if busy:
        log.warning("erase_checkpoint_incomplete", reason="readers kept the log busy")


def history_of(rt: Runtime, memory_id: int) -> list[records.LedgerRecord]:
    with rt.read() as conn:
        load(conn, memory_id)
        return records.history(conn, "memory", str(memory_id))
