"""A memory's status moves (promote, auto_promote, reject, invalidate, expire), each a
mutation of its own, or one step of a caller's; promoting a proposed correction supersedes the
memory it proposed to replace."""

from __future__ import annotations

from typing import Any

from memwarden.core import access, lifecycle, provenance, validate
from memwarden.core.memories import _write, load
from memwarden.core.models import Memory
from memwarden.core.runtime import Mutation, Runtime


def transition(rt: Runtime, memory_id: int, operation: str, note: str | None = None) -> Memory:
    """promote, auto_promote, reject, invalidate, expire: a status move and nothing else."""
    note = validate.note(note)
    with rt.mutation() as m:
        memory = load(m.conn, memory_id, for_update=True)
        return transition_in(m, memory, operation, note)


def transition_in(m: Mutation, memory: Memory, operation: str, note: str | None) -> Memory:
    op = lifecycle.check(operation, memory.id, memory.status)
    assert op.to is not None
    access.check_operation(operation, memory)
    changes: dict[str, Any] = {"status": op.to}
    if operation == "promote" and provenance.current().is_person:
        changes["tier"] = provenance.VERIFIED  # a person approved it
    after = _write(m, memory, **changes)
    extra = {"tier": after.tier} if after.tier != memory.tier else None
    m.record(
        "memory",
        memory.id,
        memory.project,
        op.action,
        memory.snapshot(),
        after.snapshot(),
        note,
        extra,
    )
    if op.to == lifecycle.ACTIVE and memory.proposes is not None:
        _accept_proposal(m, after, memory.proposes)
    return after


def _accept_proposal(m: Mutation, successor: Memory, old_id: int) -> None:
    """A promoted correction replaces the memory it proposed to replace, if still active."""
    old = load(m.conn, old_id, for_update=True)
    if old.status != lifecycle.ACTIVE:
        return
    mark_superseded(m, old, successor.id, f"replaced by the approved correction {successor.id}")


def mark_superseded(m: Mutation, old: Memory, successor_id: int, note: str | None) -> Memory:
    """``old`` superseded by ``successor_id``, recorded; the caller checked that it may be."""
    after = _write(m, old, status=lifecycle.SUPERSEDED, superseded_by=successor_id)
    m.record(
        "memory",
        old.id,
        old.project,
        "superseded",
        old.snapshot(),
        after.snapshot(),
        note,
        {"successor": successor_id},
    )
    return after
