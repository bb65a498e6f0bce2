"""Putting a memory back to an earlier version (erasure lives in core/erasure/)."""

from __future__ import annotations

import structlog
from sqlalchemy import select

from memwarden.audit import records
from memwarden.audit.chain import format_ts
from memwarden.core import lifecycle, validate
from memwarden.core.memories import _refuse_duplicate, _write, load
from memwarden.core.models import Memory, metadata_text
from memwarden.core.runtime import Mutation, Runtime
from memwarden.core.text import content_hash
from memwarden.db import schema
from memwarden.errors import IllegalTransitionError, InvalidInputError

log = structlog.get_logger(__name__)

# The fields a revert restores; counters and timestamps keep telling the truth about today.
REVERTED_FIELDS = ("content", "type", "confidence", "status", "source_chunk_id", "superseded_by")
# Restored too, but absent from snapshots that had none (metadata: before 0017, or empty).
OPTIONAL_REVERTED_FIELDS = ("metadata",)


def revert(rt: Runtime, memory_id: int, to_seq: int, note: str | None = None) -> Memory:
    note = validate.note(note)
    with rt.mutation() as m:
        memory = load(m.conn, memory_id, for_update=True)
        if memory.status == lifecycle.ERASED:
            raise IllegalTransitionError(
                memory.id, memory.status, "revert", "erased content is gone"
            )
        target = records.at_seq(m.conn, to_seq, rt.ledger.key)
        if target is None:
            raise InvalidInputError(f"ledger row {to_seq} does not exist")
        if target.entity_type != "memory" or target.entity_id != str(memory_id):
            raise InvalidInputError(
                f"ledger row {to_seq} belongs to {target.entity_type} {target.entity_id}, "
                f"not memory {memory_id}"
            )
        if target.erased or target.after is None:
            raise InvalidInputError(f"ledger row {to_seq} holds no version to revert to")
        records.require_authentic(target)
        wanted = {name: target.after[name] for name in REVERTED_FIELDS}
        wanted["metadata"] = metadata_text(target.after.get("metadata"))  # its stored text
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


def history_of(rt: Runtime, memory_id: int) -> list[records.LedgerRecord]:
    with rt.read() as conn:
        load(conn, memory_id)
        return records.history(conn, "memory", str(memory_id), rt.ledger.key)
