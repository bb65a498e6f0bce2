"""Memory mutations along the lifecycle, each one transaction with its ledger entry."""

from __future__ import annotations

import json
from dataclasses import replace
from operator import itemgetter
from typing import Any

from sqlalchemy import Connection, bindparam, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from memwarden.audit import rowmac
from memwarden.audit.statements import DriverScript, DriverStatement
from memwarden.core import access, lifecycle, provenance, trust, validate
from memwarden.core import metadata as meta
from memwarden.core.models import CreateResult, Memory
from memwarden.core.runtime import Mutation, Runtime
from memwarden.core.text import content_hash
from memwarden.db import schema
from memwarden.errors import (
    ConflictError,
    InvalidInputError,
    NotFoundError,
    StorageError,
)

M = schema.memories
DEFAULT_CONFIDENCE = 0.6
_UNSET: Any = object()
# The row MAC is not a memory field: every write sets it from the fields (audit/rowmac.py).
_FIELDS = [column.key for column in M.columns if column.key not in ("id", "mac")]
# A restatement met by a concurrent change of the memory it restates (rejected between our
# insert and our lock, say) is retried; this bounds the retries.
_CREATE_ATTEMPTS = 3

# Built once: constructing a statement costs more than running it (SQLAlchemy then only
# looks up the compiled form in its cache).
_LOAD = select(M).where(M.c.id == bindparam("memory_id"))
_LOAD_FOR_UPDATE = _LOAD.with_for_update()
_FIND_LIVE = (
    select(M)
    .where(
        M.c.project == bindparam("project"),
        M.c.type == bindparam("type_"),
        M.c.content_hash == bindparam("digest"),
        M.c.status.in_(lifecycle.LIVE),
    )
    .with_for_update()
)
_UPDATE = update(M).where(M.c.id == bindparam("memory_id"))
# A new memory's MAC'd fields but its id, in the MAC's order, from the fields of ``create_in``.
_MAC_FIELDS = itemgetter(*rowmac.MemoryMacFields._fields[1:])
# A new memory's id, taken before its insert: the row's MAC covers its id, so the row then
# goes in whole, MAC included, in one statement (an insert and then an update of the MAC
# wrote the row twice). SQLite: the transaction holds the write lock (BEGIN IMMEDIATE), so no
# one else can take the id meanwhile; AUTOINCREMENT's next id is past both the largest id
# ever given (sqlite_sequence) and the largest held. PostgreSQL: the column's sequence, in
# the round trip of the transaction's BEGIN (``DriverScript.fetch_text``).
_NEXT_ID = {
    "sqlite": DriverScript(
        text(
            "SELECT max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'memories'), 0), "
            "coalesce((SELECT max(id) FROM memories), 0)) + 1"
        )
    ),
    "postgresql": DriverScript(text("SELECT nextval(pg_get_serial_sequence('memories', 'id'))")),
}
# The live-content guard (a partial unique index on project, type and content hash of
# candidate and active memories) decides between a new memory and a restatement in the
# insert itself: no lookup first, and no savepoint for a concurrent writer who won the race.
_LIVE_GUARD: dict[str, Any] = {
    "index_elements": [M.c.project, M.c.type, M.c.content_hash],
    "index_where": text("status IN ('candidate', 'active')"),
}
# Whether the row went in is the driver's row count: a RETURNING clause cost SQLite a
# subprogram and a result row on every create (~9–15 µs of a ~50–75 µs insert).
_INSERT_UNLESS_LIVE = DriverStatement(
    {
        "sqlite": sqlite.insert(M).on_conflict_do_nothing(**_LIVE_GUARD),
        "postgresql": postgresql.insert(M).on_conflict_do_nothing(**_LIVE_GUARD),
    },
    ["id", *_FIELDS, "mac"],
)


def load(conn: Connection, memory_id: int, *, for_update: bool = False) -> Memory:
    query = _LOAD_FOR_UPDATE if for_update else _LOAD
    row = conn.execute(query, {"memory_id": memory_id}).first()
    if row is None:
        raise NotFoundError(f"memory {memory_id} not found")
    return Memory.from_row(row)


def _find_live(conn: Connection, project: str, type_: str, digest: str) -> Memory | None:
    row = conn.execute(_FIND_LIVE, {"project": project, "type_": type_, "digest": digest}).first()
    return Memory.from_row(row) if row is not None else None


def _write(m: Mutation, memory: Memory, **changes: Any) -> Memory:
    # A row edited outside memwarden is never built on: a new MAC would bless its text.
    m.guard.require_memory(memory)
    changed = replace(memory, updated_at=m.now, **changes)
    values = {name: getattr(changed, name) for name in _FIELDS}
    mac = m.guard.macs.memory(changed)
    m.conn.execute(_UPDATE, {"memory_id": memory.id, **values, "mac": mac})
    return replace(changed, mac=mac)


RESTORED = "restored"


def restore_in(m: Mutation, memory_id: int, version: dict[str, Any], note: str) -> Memory:
    """Put a tampered row back to ``version`` (its last ledger snapshot), with a fresh MAC.

    The repair of ``integrity check --fix``, and the one write that does not check the row's
    MAC first (it is the row's cure). The ledger entry's ``before`` is the version the ledger
    last recorded, not the tampered row, so the memory's history still replays without a seam;
    the fields the tampering changed are named in ``extra``."""
    current = load(m.conn, memory_id, for_update=True)
    restored = Memory.from_snapshot(version)
    if restored.id != memory_id:
        raise InvalidInputError(f"the version given is memory {restored.id}'s, not {memory_id}'s")
    after = replace(restored, updated_at=m.now)
    values = {name: getattr(after, name) for name in _FIELDS}
    mac = m.guard.macs.memory(after)
    m.conn.execute(_UPDATE, {"memory_id": memory_id, **values, "mac": mac})
    seen = current.snapshot()
    changed = sorted(k for k, v in version.items() if seen.get(k) != v and k != "updated_at")
    m.record(
        "memory",
        memory_id,
        after.project,
        RESTORED,
        version,
        after.snapshot(),
        note,
        {"tampered_fields": changed},
    )
    return replace(after, mac=mac)


def _check_chunk(conn: Connection, chunk_id: int | None, project: str) -> int | None:
    if chunk_id is None:
        return None
    row = conn.execute(
        select(schema.source_chunks.c.project).where(schema.source_chunks.c.id == chunk_id)
    ).first()
    if row is None:
        raise NotFoundError(f"source chunk {chunk_id} not found")
    if row.project != project:
        raise InvalidInputError(f"source chunk {chunk_id} belongs to project {row.project!r}")
    return chunk_id


def create(
    rt: Runtime,
    project: str,
    content: str,
    type: str = "knowledge",
    confidence: float = DEFAULT_CONFIDENCE,
    *,
    status: str = lifecycle.CANDIDATE,
    source_chunk_id: int | None = None,
    note: str | None = None,
    metadata: Any = None,
) -> CreateResult:
    """Create a memory, or reinforce the live memory that already says the same thing (a
    restatement keeps that memory's metadata: ``update`` changes it)."""
    text = validate.content(rt.settings, content)
    stored_metadata = meta.parse(metadata)
    type_ = validate.memory_type(rt.settings, type)
    confidence = validate.confidence(confidence)
    note = validate.note(note)
    if status not in lifecycle.LIVE:
        raise InvalidInputError(f"a new memory is a candidate or active, not {status!r}")
    access.check_write(project)
    access.check_status(status)
    with rt.mutation() as m:
        return create_in(
            m,
            project,
            text,
            type_,
            confidence,
            status,
            source_chunk_id,
            note,
            metadata=stored_metadata,
        )


def create_in(
    m: Mutation,
    project: str,
    text: str,
    type_: str,
    confidence: float,
    status: str,
    source_chunk_id: int | None,
    note: str | None,
    extra: dict[str, Any] | None = None,
    *,
    metadata: str | None = None,
) -> CreateResult:
    """``create`` inside a caller's mutation, on values already validated (``metadata`` as
    ``core.metadata.parse`` gives it). Screening and provenance decide its tier; a flagged
    text or an agent's correction of a more trusted memory is held back as a candidate
    (``proposes`` names the memory it would replace)."""
    digest = content_hash(text)
    validate.could_be_project(project)
    if source_chunk_id is not None:
        validate.project_exists(m.conn, project)  # named first, as for any unknown project
        _check_chunk(m.conn, source_chunk_id, project)
    stamped = trust.stamp(m.conn, project, type_, text, status)
    if stamped.status != status:
        held = "flagged by screening" if stamped.fields["flags"] else "a proposed correction"
        extra = {**(extra or {}), "held_as_candidate": held}
        status = stamped.status
    if stamped.fields["flags"] or stamped.fields["proposes"]:
        extra = {
            **(extra or {}),
            "tier": stamped.fields["tier"],
            "flags": provenance_reasons(stamped.fields["flags"]),
            "proposes": stamped.fields["proposes"],
        }
    fields: dict[str, Any] = {
        "project": project,
        "type": type_,
        "content": text,
        "content_hash": digest,
        "confidence": confidence,
        "status": status,
        "source_chunk_id": source_chunk_id,
        "reinforcement_count": 0,
        "superseded_by": None,
        "created_at": m.now,
        "updated_at": m.now,
        "last_reinforced_at": None,
        "metadata": metadata,
        **stamped.fields,
    }
    for _ in range(_CREATE_ATTEMPTS):
        new_id = _next_id(m.conn)
        # The row holds exactly these values: its snapshot needs no read back. The MAC is
        # made from the MAC'd fields alone (a memory record built only to be MAC'd cost as
        # much as the MAC), and the row is bound from ``fields`` as they are.
        mac = m.guard.macs.memory(_mac_fields(new_id, fields))
        created = Memory(id=new_id, **fields, mac=mac)
        if _insert_unless_live(m.conn, created, fields):
            m.record("memory", new_id, project, "created", None, created.snapshot(), note, extra)
            return CreateResult(created, reinforced=False)
        # A live memory already says this (perhaps a concurrent writer's, just committed).
        existing = _find_live(m.conn, project, type_, digest)
        if existing is not None:
            reinforced = _reinforce(m, existing, note or "restated by a new memory")
            return CreateResult(reinforced, reinforced=True)
    raise ConflictError(
        f"the memory restating this in project {project!r} kept changing under concurrent "
        "writers: try again"
    )


def _next_id(conn: Connection) -> int:
    row = _NEXT_ID[conn.dialect.name].fetch_text(conn)
    if row is None or row[0] is None:
        raise StorageError("the database gave no id for a new memory")
    return int(row[0])


def _mac_fields(memory_id: int, fields: dict[str, Any]) -> rowmac.MemoryMacFields:
    """The MAC'd fields of the memory ``fields`` describe, under ``memory_id``."""
    return rowmac.MemoryMacFields(memory_id, *_MAC_FIELDS(fields))


def _insert_unless_live(conn: Connection, memory: Memory, fields: dict[str, Any]) -> bool:
    """Insert the row (its id and MAC set) from ``fields``, the values ``memory`` holds; False
    when a live memory already says the same thing."""
    try:
        inserted = _INSERT_UNLESS_LIVE.changes(conn, {**fields, "id": memory.id, "mac": memory.mac})
    except IntegrityError as exc:
        # The only reference left to check is the project (a source chunk was checked above):
        # the foreign key does the lookup a separate query would.
        if memory.source_chunk_id is None and _is_foreign_key_violation(exc):
            raise validate.unknown_project(memory.project) from exc
        raise
    if inserted not in (0, 1):
        # Taken for "a live memory says this", the row just written would be reinforced
        # with no ledger entry of its creation.
        raise StorageError(f"the driver reported {inserted} rows for one memory's insert")
    return inserted == 1


def provenance_reasons(flags: str | None) -> list[str]:
    return list(json.loads(flags)) if flags else []


def _is_foreign_key_violation(exc: IntegrityError) -> bool:
    sqlstate = getattr(exc.orig, "sqlstate", None)  # psycopg
    return sqlstate == "23503" or "FOREIGN KEY constraint failed" in str(exc.orig)


def _reinforce(m: Mutation, memory: Memory, note: str | None) -> Memory:
    """One more confirmation; only one from a source other than the writer counts towards
    auto-promotion (the same key repeating itself does not)."""
    op = lifecycle.check("reinforce", memory.id, memory.status)
    independent = trust.counts_as_independent(
        memory.source_kind, memory.source_actor, memory.source_key
    )
    after = _write(
        m,
        memory,
        reinforcement_count=memory.reinforcement_count + 1,
        independent_reinforcements=memory.independent_reinforcements + int(independent),
        last_reinforced_at=m.now,
    )
    m.record(
        "memory", memory.id, memory.project, op.action, memory.snapshot(), after.snapshot(), note
    )
    return after


def reinforce(rt: Runtime, memory_id: int, note: str | None = None) -> Memory:
    note = validate.note(note)
    with rt.mutation() as m:
        memory = load(m.conn, memory_id, for_update=True)
        access.check_write(memory.project)
        return _reinforce(m, memory, note)


def update_memory(
    rt: Runtime,
    memory_id: int,
    *,
    content: str | None = None,
    type: str | None = None,
    confidence: float | None = None,
    source_chunk_id: int | None = _UNSET,
    note: str | None = None,
    metadata: Any = _UNSET,
) -> Memory:
    """Change fields of a live memory; ``metadata`` replaces the whole object ({} or None
    clears it)."""
    changes: dict[str, Any] = {}
    if metadata is not _UNSET:
        changes["metadata"] = meta.parse(metadata)
    if content is not None:
        changes["content"] = validate.content(rt.settings, content)
    if type is not None:
        changes["type"] = validate.memory_type(rt.settings, type)
    if confidence is not None:
        changes["confidence"] = validate.confidence(confidence)
    note = validate.note(note)
    if not changes and source_chunk_id is _UNSET:
        raise InvalidInputError(
            "nothing to update: give content, type, confidence, metadata or a source chunk"
        )
    with rt.mutation() as m:
        memory = load(m.conn, memory_id, for_update=True)
        lifecycle.check("update", memory.id, memory.status)
        access.check_update(memory)
        if source_chunk_id is not _UNSET:
            changes["source_chunk_id"] = _check_chunk(m.conn, source_chunk_id, memory.project)
        if all(getattr(memory, name) == value for name, value in changes.items()):
            raise InvalidInputError(
                f"memory {memory.id} already holds these values: nothing to update"
            )
        return update_in(m, memory, changes, note)


def update_in(m: Mutation, memory: Memory, changes: dict[str, Any], note: str | None) -> Memory:
    """Apply field changes to a live memory, refusing one that would duplicate another."""
    if "content" in changes:
        changes["content_hash"] = content_hash(changes["content"])
        changes.update(trust.rescreen(changes["content"], memory.tier, memory.source_kind))
        if not provenance.current().is_person and memory.tier == provenance.VERIFIED:
            changes.setdefault("tier", provenance.AGENT_TIER)  # no longer what a person wrote
        if changes.get("tier") == provenance.FLAGGED and memory.status == lifecycle.ACTIVE:
            raise InvalidInputError(
                f"screening flagged the new content ({', '.join(provenance_reasons(changes['flags']))}): "
                "an active memory cannot hold it; write it as a new memory for triage"
            )
    _refuse_duplicate(m.conn, memory, changes)
    after = _write(m, memory, **changes)
    m.record(
        "memory", memory.id, memory.project, "updated", memory.snapshot(), after.snapshot(), note
    )
    return after


def _refuse_duplicate(conn: Connection, memory: Memory, changes: dict[str, Any]) -> None:
    status = changes.get("status", memory.status)
    if status not in lifecycle.LIVE:
        return
    type_ = changes.get("type", memory.type)
    digest = changes.get("content_hash", memory.content_hash)
    other = _find_live(conn, memory.project, type_, digest)
    if other is not None and other.id != memory.id:
        raise ConflictError(
            f"memory {other.id} already says this ({other.status}): reinforce it or supersede "
            f"memory {memory.id} with it instead"
        )
