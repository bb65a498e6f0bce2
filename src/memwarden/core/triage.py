"""The triage queue: candidates waiting for a person, with where they came from.

Every decision here is made by ``human-triage``: promote, reject, or edit then promote. A
decision on several candidates is all or nothing: one that is not a candidate (any more)
refuses the whole decision and changes nothing.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, tuple_

from memwarden.audit.actor import HUMAN_TRIAGE, acting_as
from memwarden.core import capture, lifecycle, memories, transitions, validate
from memwarden.core.capture import Interaction
from memwarden.core.extraction.similarity import tokens
from memwarden.core.models import Memory
from memwarden.core.runtime import Runtime
from memwarden.db import schema
from memwarden.errors import IllegalTransitionError, InvalidInputError, NotFoundError

M = schema.memories
CURSOR = M.alias("cursor")  # the memory a page continues after
O = schema.memory_origins  # noqa: E741 - the table's initial, like M for memories
MAX_LIMIT = 500
MAX_IDS = 1000
SIMILAR_SCAN = 5000
SIMILAR_MIN = 0.3


@dataclass(frozen=True)
class Origin:
    interaction_id: int
    extractor: str
    extractor_version: str
    created_at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {
            "interaction_id": self.interaction_id,
            "extractor": self.extractor,
            "extractor_version": self.extractor_version,
            "created_at": self.created_at.isoformat(),
        }


@dataclass(frozen=True)
class TriageItem:
    memory: Memory
    origins: tuple[Origin, ...]

    @property
    def source(self) -> Origin | None:
        return self.origins[0] if self.origins else None

    def to_dict(self) -> dict[str, Any]:
        return {**self.memory.to_dict(), "origins": [o.to_dict() for o in self.origins]}


@dataclass(frozen=True)
class Similar:
    memory: Memory
    score: float

    def to_dict(self) -> dict[str, Any]:
        return {"memory": self.memory.to_dict(), "score": round(self.score, 3)}


@dataclass(frozen=True)
class TriageDetail:
    item: TriageItem
    interaction: Interaction | None  # the interaction the candidate was born from
    similar: tuple[Similar, ...]  # active memories of the project that say something close
    replaces: Memory | None = None  # the active memory this candidate proposes to replace

    @property
    def diff(self) -> list[str]:
        """The proposed change as a word diff of the statement it replaces."""
        if self.replaces is None:
            return []
        return [
            line
            for line in difflib.unified_diff(
                self.replaces.content.split(),
                self.item.memory.content.split(),
                f"memory {self.replaces.id}",
                f"memory {self.item.memory.id}",
                lineterm="",
            )
        ]

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.item.to_dict(),
            "interaction": self.interaction.to_dict() if self.interaction else None,
            "similar": [s.to_dict() for s in self.similar],
            "replaces": self.replaces.to_dict() if self.replaces else None,
            "diff": self.diff,
        }


def _origins(conn: Any, memory_ids: Sequence[int]) -> dict[int, list[Origin]]:
    found: dict[int, list[Origin]] = {}
    if not memory_ids:
        return found
    rows = conn.execute(
        select(O).where(O.c.memory_id.in_(list(memory_ids))).order_by(O.c.memory_id, O.c.id)
    )
    for row in rows:
        found.setdefault(int(row.memory_id), []).append(
            Origin(int(row.interaction_id), row.extractor, row.extractor_version, row.created_at)
        )
    return found


def queue(
    rt: Runtime,
    *,
    project: str | None = None,
    type: str | None = None,
    after_id: int | None = None,
    limit: int = 50,
) -> list[TriageItem]:
    """Candidates newest first; ``after_id`` is the cursor (the last id of the last page)."""
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInputError(f"limit must be between 1 and {MAX_LIMIT}")
    # Newest first by creation time, which the (status, created_at) index serves directly;
    # the id breaks ties and is the cursor.
    query = (
        select(M)
        .where(M.c.status == lifecycle.CANDIDATE)
        .order_by(M.c.created_at.desc(), M.c.id.desc())
        .limit(limit)
    )
    if project is not None:
        query = query.where(M.c.project == project)
    if type is not None:
        query = query.where(M.c.type == validate.memory_type(rt.settings, type))
    with rt.read() as conn:
        if project is not None:
            validate.project_exists(conn, project)
        if after_id is not None:
            # The cursor's creation time, read in the same statement (one round trip). The plain
            # range lets both engines walk the index; the row comparison breaks ties.
            mark = select(CURSOR.c.created_at).where(CURSOR.c.id == after_id).scalar_subquery()
            query = query.where(
                M.c.created_at <= mark, tuple_(M.c.created_at, M.c.id) < tuple_(mark, after_id)
            )
        items = [Memory.from_row(row) for row in conn.execute(query)]
        if not items and after_id is not None:
            known = conn.execute(select(M.c.id).where(M.c.id == after_id)).first()
            if known is None:  # an unknown cursor is an error, not an empty page
                raise NotFoundError(f"memory {after_id} (the cursor) not found")
        origins = _origins(conn, [m.id for m in items])
    return [TriageItem(m, tuple(origins.get(m.id, ()))) for m in items]


def size(rt: Runtime, project: str | None = None, type: str | None = None) -> int:
    """How many candidates wait (in a project, of a type)."""
    query = select(func.count()).select_from(M).where(M.c.status == lifecycle.CANDIDATE)
    if project is not None:
        query = query.where(M.c.project == project)
    if type is not None:
        query = query.where(M.c.type == validate.memory_type(rt.settings, type))
    with rt.read() as conn:
        return int(conn.execute(query).scalar_one())


def detail(rt: Runtime, memory_id: int) -> TriageDetail:
    with rt.read() as conn:
        memory = memories.load(conn, memory_id)
        replaces = memories.load(conn, memory.proposes) if memory.proposes else None
        origins = tuple(_origins(conn, [memory_id]).get(memory_id, ()))
        actives = conn.execute(
            select(M)
            .where(M.c.project == memory.project, M.c.status == lifecycle.ACTIVE)
            .order_by(M.c.id.desc())
            .limit(SIMILAR_SCAN)
        ).all()
    interaction = capture.get(rt, origins[0].interaction_id) if origins else None
    wanted = tokens(memory.content).words
    scored = []
    for row in actives:
        other = tokens(row.content).words
        if wanted and other:
            score = len(wanted & other) / len(wanted | other)
            if score >= SIMILAR_MIN:
                scored.append(Similar(Memory.from_row(row), score))
    scored.sort(key=lambda s: (-s.score, s.memory.id))
    return TriageDetail(TriageItem(memory, origins), interaction, tuple(scored[:3]), replaces)


def _ids(memory_ids: Sequence[int]) -> list[int]:
    unique = list(dict.fromkeys(memory_ids))
    if not unique:
        raise InvalidInputError("give at least one memory id")
    if len(unique) > MAX_IDS:
        raise InvalidInputError(f"at most {MAX_IDS} memories per decision")
    return unique


def decide(
    rt: Runtime, memory_ids: Sequence[int], operation: str, note: str | None
) -> list[Memory]:
    """Promote or reject candidates, all or nothing, as ``human-triage``."""
    if operation not in ("promote", "reject"):
        raise InvalidInputError(f"triage promotes or rejects, not {operation!r}")
    ids = _ids(memory_ids)
    note = validate.note(note)
    with acting_as(HUMAN_TRIAGE), rt.mutation() as m:
        return [
            transitions.transition_in(m, memories.load(m.conn, i, for_update=True), operation, note)
            for i in ids
        ]


def edit_and_promote(rt: Runtime, memory_id: int, content: str, note: str | None) -> Memory:
    """Rewrite a candidate's statement, then promote it: two ledger entries, one transaction."""
    text = validate.content(rt.settings, content)
    note = validate.note(note)
    with acting_as(HUMAN_TRIAGE), rt.mutation() as m:
        memory = memories.load(m.conn, memory_id, for_update=True)
        if memory.status != lifecycle.CANDIDATE:
            raise IllegalTransitionError(
                memory.id, memory.status, "edit and promote", "only a candidate is triaged"
            )
        if text != memory.content:
            memory = memories.update_in(m, memory, {"content": text}, note)
        return transitions.transition_in(m, memory, "promote", note)
