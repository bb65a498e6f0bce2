"""Superseding: an active memory replaced by another, or by new content.

An agent's new content for a memory more trusted than its own writing does not replace it: it
becomes a candidate proposing the change (``proposes``), and the old memory keeps being served
until a person approves the proposal in triage.
"""

from __future__ import annotations

from memwarden.core import access, lifecycle, provenance, validate
from memwarden.core.memories import _write, create_in, load
from memwarden.core.models import Memory
from memwarden.core.runtime import Mutation, Runtime
from memwarden.core.text import content_hash
from memwarden.core.transitions import mark_superseded
from memwarden.errors import ForbiddenError, IllegalTransitionError, InvalidInputError


def supersede(
    rt: Runtime,
    memory_id: int,
    *,
    by: int | None = None,
    content: str | None = None,
    note: str | None = None,
) -> tuple[Memory, Memory]:
    """Replace an active memory by another one (given, or created from ``content``).

    Returns the superseded memory and its successor."""
    if (by is None) == (content is None):
        raise InvalidInputError("supersede needs exactly one of a successor id or new content")
    note = validate.note(note)
    text = validate.content(rt.settings, content) if content is not None else None
    with rt.mutation() as m:
        old = load(m.conn, memory_id, for_update=True)
        lifecycle.check("supersede", old.id, old.status)
        access.check_operation("supersede", old)
        if text is not None and access.outranks(old):
            return old, _propose(m, old, text, note)
        if text is not None:
            successor = _successor_from_content(m, old, text, note)
        else:
            assert by is not None
            successor = load(m.conn, by, for_update=True)
        if successor.id == old.id:
            raise IllegalTransitionError(
                old.id, old.status, "supersede", "a memory cannot supersede itself"
            )
        if successor.project != old.project:
            raise InvalidInputError(
                f"memory {successor.id} belongs to project {successor.project!r}, not {old.project!r}"
            )
        if successor.status != lifecycle.ACTIVE:
            raise IllegalTransitionError(
                successor.id, successor.status, "supersede with", "the successor must be active"
            )
        if access.outranks(old) and provenance.rank(successor.tier) < provenance.rank(old.tier):
            raise ForbiddenError(
                f"memory {old.id} is {old.tier}: a less trusted memory cannot replace it; "
                "supersede it with new content to propose the change for triage"
            )
        return mark_superseded(m, old, successor.id, note), successor


def _propose(m: Mutation, old: Memory, text: str, note: str | None) -> Memory:
    """An agent's correction of a more trusted memory: a candidate proposing the change; the
    old memory stays active until a person approves it."""
    if content_hash(text) == old.content_hash:
        raise IllegalTransitionError(
            old.id, old.status, "supersede", "the new content says the same thing"
        )
    result = create_in(
        m,
        old.project,
        text,
        old.type,
        old.confidence,
        lifecycle.CANDIDATE,
        None,
        note,
        {"proposes": old.id},
        metadata=old.metadata,  # a corrected fact keeps what the caller tagged it with
    )
    proposal = result.memory
    if proposal.status == lifecycle.CANDIDATE and proposal.proposes != old.id:
        proposal = _write(m, proposal, proposes=old.id)
    return proposal


def _successor_from_content(m: Mutation, old: Memory, text: str, note: str | None) -> Memory:
    """The active memory saying ``text``: created for the occasion, or the live one that
    already says it (reinforced). Goes through ``create_in`` so a concurrent writer of the
    same statement is met by the same guard as any create."""
    if content_hash(text) == old.content_hash:
        raise IllegalTransitionError(
            old.id, old.status, "supersede", "the new content says the same thing"
        )
    result = create_in(
        m,
        old.project,
        text,
        old.type,
        old.confidence,
        lifecycle.ACTIVE,
        None,
        note,
        {"supersedes": old.id},
        metadata=old.metadata,  # a corrected fact keeps what the caller tagged it with
    )
    return result.memory
