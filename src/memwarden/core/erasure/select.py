"""What an erase reaches: the memories asked for, and the interactions and chunks their text
came from; for a bulk erase, everything matching a project, an actor or a text query.

A memory came from the interactions ``memory_origins`` names and from the source chunk it
cites. ``sources`` says what happens to them: ``all`` (the default) blanks the whole
interaction or chunk, ``span`` cuts only the memory's text out of it, ``keep`` leaves it.
The selection is computed the same way for the dry run and for the erase itself, so the dry
run lists exactly what would go.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import Connection, String, cast, or_, select

from memwarden.core import lifecycle
from memwarden.db import schema
from memwarden.errors import InvalidInputError

M = schema.memories
I = schema.interactions  # noqa: E741 - the interactions table, as in core/capture
C = schema.source_chunks
L = schema.ledger
O = schema.memory_origins  # noqa: E741

Sources = Literal["all", "span", "keep"]
SOURCES: tuple[str, ...] = ("all", "span", "keep")
MAX_QUERY_CHARS = 1000


@dataclass(frozen=True)
class Criteria:
    """A bulk erase: every given criterion must match (at least one is needed)."""

    project: str | None = None
    actor: str | None = None
    query: str | None = None

    def check(self) -> None:
        if not any((self.project, self.actor, self.query)):
            raise InvalidInputError("a bulk erase needs a project, an actor or a text query")
        if self.query is not None and not self.query.strip():
            raise InvalidInputError("the text query is empty")
        if self.query is not None and len(self.query) > MAX_QUERY_CHARS:
            raise InvalidInputError(f"the text query is longer than {MAX_QUERY_CHARS} characters")

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


@dataclass
class Selection:
    """What an erase will touch. ``blank`` rows lose all their text, ``span`` rows only the
    erased memories' text."""

    memories: list[int] = field(default_factory=list)
    blank_interactions: list[int] = field(default_factory=list)
    blank_chunks: list[int] = field(default_factory=list)
    span_interactions: list[int] = field(default_factory=list)
    span_chunks: list[int] = field(default_factory=list)

    def to_dict(self) -> dict[str, list[int]]:
        return dict(self.__dict__)

    @property
    def empty(self) -> bool:
        return not any(self.__dict__.values())


def check_sources(sources: str) -> Sources:
    if sources not in SOURCES:
        raise InvalidInputError(f"sources must be one of {', '.join(SOURCES)}, not {sources!r}")
    return sources  # type: ignore[return-value]


def origins(conn: Connection, memory_ids: list[int]) -> tuple[list[int], list[int]]:
    """The interactions and the source chunks the memories came from."""
    if not memory_ids:
        return [], []
    interactions = conn.execute(
        select(O.c.interaction_id).where(O.c.memory_id.in_(memory_ids)).distinct()
    ).scalars()
    chunks = conn.execute(
        select(M.c.source_chunk_id)
        .where(M.c.id.in_(memory_ids), M.c.source_chunk_id.is_not(None))
        .distinct()
    ).scalars()
    return sorted(int(i) for i in interactions), sorted(int(c) for c in chunks)


def for_memories(conn: Connection, memory_ids: list[int], sources: Sources) -> Selection:
    interactions, chunks = origins(conn, memory_ids)
    selection = Selection(memories=sorted(memory_ids))
    if sources == "all":
        selection.blank_interactions, selection.blank_chunks = interactions, chunks
    elif sources == "span":
        selection.span_interactions, selection.span_chunks = interactions, chunks
    return selection


def _created_by(entity_type: str, actor: str) -> Any:
    """Ids (as text) of the entities of one type that ``actor`` created (or, for a document,
    ingested again)."""
    actions = ("created", "updated") if entity_type == "document" else ("created", "captured")
    return select(L.c.entity_id).where(
        L.c.entity_type == entity_type, L.c.actor == actor, L.c.action.in_(actions)
    )


def matching(conn: Connection, criteria: Criteria, sources: Sources) -> Selection:
    """Every memory, interaction and chunk the criteria match, plus the sources of the
    memories (treated as ``sources`` says)."""
    criteria.check()
    memory_query = select(M.c.id).where(M.c.status != lifecycle.ERASED)
    interaction_query = select(I.c.id).where(or_(I.c.prompt != "", I.c.response != ""))
    chunk_query = select(C.c.id).where(or_(C.c.content != "", C.c.heading != ""))
    if criteria.project is not None:
        memory_query = memory_query.where(M.c.project == criteria.project)
        interaction_query = interaction_query.where(I.c.project == criteria.project)
        chunk_query = chunk_query.where(C.c.project == criteria.project)
    if criteria.actor is not None:
        memory_query = memory_query.where(
            cast(M.c.id, String).in_(_created_by("memory", criteria.actor))
        )
        interaction_query = interaction_query.where(
            cast(I.c.id, String).in_(_created_by("interaction", criteria.actor))
        )
        chunk_query = chunk_query.where(
            cast(C.c.document_id, String).in_(_created_by("document", criteria.actor))
        )
    if criteria.query is not None:
        needle = criteria.query.strip()
        memory_query = memory_query.where(M.c.content.icontains(needle, autoescape=True))
        interaction_query = interaction_query.where(
            or_(
                I.c.prompt.icontains(needle, autoescape=True),
                I.c.response.icontains(needle, autoescape=True),
            )
        )
        chunk_query = chunk_query.where(
            or_(
                C.c.content.icontains(needle, autoescape=True),
                C.c.heading.icontains(needle, autoescape=True),
            )
        )
    memory_ids = sorted(int(i) for i in conn.execute(memory_query).scalars())
    selection = for_memories(conn, memory_ids, sources)
    direct_interactions = {int(i) for i in conn.execute(interaction_query).scalars()}
    direct_chunks = {int(c) for c in conn.execute(chunk_query).scalars()}
    selection.blank_interactions = sorted(direct_interactions | set(selection.blank_interactions))
    selection.blank_chunks = sorted(direct_chunks | set(selection.blank_chunks))
    selection.span_interactions = sorted(set(selection.span_interactions) - direct_interactions)
    selection.span_chunks = sorted(set(selection.span_chunks) - direct_chunks)
    return selection
