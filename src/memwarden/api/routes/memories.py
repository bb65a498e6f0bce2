"""Memories: create, read, list, and every move along the lifecycle."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response
from pydantic import BeforeValidator, Field

from memwarden.api.models import (
    MAX_ID,
    Body,
    CreatedMemory,
    ErasedMemory,
    EraseReceiptOut,
    Int,
    MemoryOut,
    MemoryPage,
    Superseded,
    integral,
)
from memwarden.core.models import CreateResult, Memory
from memwarden.errors import InvalidInputError
from memwarden.serving.auth import Admin, Reader, Writer
from memwarden.serving.errors import responses
from memwarden.serving.params import MemoryId
from memwarden.serving.state import MW

router = APIRouter(prefix="/memory", tags=["memories"])

Note = Annotated[str | None, Field(max_length=2000, description="Why: kept in the ledger")]
# The bounds inside the type, so the schema states them as minimum/maximum even when optional.
PositiveId = Annotated[int, Field(ge=1, le=MAX_ID), BeforeValidator(integral)]
MetadataIn = Annotated[
    dict[str, Any] | None,
    Field(description="A JSON object (at most 8 KiB encoded, 4 levels, 64 keys per object)"),
]
Where = Annotated[
    list[str] | None,
    Query(
        max_length=8,
        description="Metadata filter KEY=VALUE (repeatable, AND): the key's scalar as text",
    ),
]
Status = Literal["candidate", "active", "superseded", "invalid", "rejected", "expired", "erased"]


class CreateMemory(Body):
    project: str = Field(min_length=1, max_length=100)
    content: str = Field(min_length=1)
    type: str = Field("knowledge", min_length=1, max_length=50)
    confidence: float = Field(0.6, ge=0.0, le=1.0)
    status: Literal["candidate", "active"] = "candidate"
    source_chunk_id: PositiveId | None = None
    note: Note = None
    metadata: MetadataIn = None


class UpdateMemory(Body):
    content: str | None = Field(None, min_length=1)
    type: str | None = Field(None, min_length=1, max_length=50)
    confidence: float | None = Field(None, ge=0.0, le=1.0)
    source_chunk_id: PositiveId | None = Field(
        None, description="A source chunk to cite; null removes the citation"
    )
    note: Note = None
    metadata: MetadataIn = Field(
        None, description="Replaces the whole metadata object; {} or null clears it"
    )


class NoteBody(Body):
    note: Note = None


class SupersedeBody(Body):
    by: PositiveId | None = Field(None, description="An active memory that replaces it")
    content: str | None = Field(None, min_length=1, description="Or the content of a new one")
    note: Note = None


class RevertBody(Body):
    to_seq: Int = Field(
        ge=1, le=MAX_ID, description="The ledger row holding the version to restore"
    )
    note: Note = None


class EraseBody(Body):
    reason: str = Field(min_length=1, max_length=2000, description="Why it is erased (recorded)")
    sources: Literal["all", "span", "keep"] = Field(
        "all",
        description="The interactions and chunks the memory came from: blank them (all), cut "
        "only its text out (span), or keep them",
    )
    wait: float | None = Field(
        None, ge=0, le=30, description="Seconds to wait for the scrub of old copies on disk"
    )


@router.post(
    "",
    status_code=201,
    response_model=CreatedMemory,
    responses={
        200: {"model": CreatedMemory, "description": "A live memory said this already: reinforced"},
        **responses(401, 403, 404, 409),
    },
)
def create_memory(body: CreateMemory, caller: Writer, mw: MW, response: Response) -> CreateResult:
    """Store a memory, or reinforce the live memory that already says the same thing."""
    with caller.acting():
        result = mw.remember(
            body.project,
            body.content,
            body.type,
            body.confidence,
            status=body.status,
            source_chunk_id=body.source_chunk_id,
            note=body.note,
            metadata=body.metadata,
        )
    if result.reinforced:
        response.status_code = 200
    return result


@router.get("", response_model=MemoryPage, responses=responses(401, 403))
def list_memories(
    caller: Reader,
    mw: MW,
    project: Annotated[str | None, Query(min_length=1, max_length=100)] = None,
    status: Status | None = None,
    type: Annotated[str | None, Query(min_length=1, max_length=50)] = None,
    after: Annotated[
        int | None,
        Query(ge=1, le=MAX_ID, description="Cursor: the next_cursor of the previous page"),
    ] = None,
    cursor: Annotated[
        int | None, Query(ge=1, le=MAX_ID, description="The same as `after`, by its other name")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    where: Where = None,
) -> dict[str, Any]:
    """Memories newest first, a page at a time; ``where`` filters on metadata."""
    if after is not None and cursor is not None and after != cursor:
        raise InvalidInputError("give the page cursor once: `after` or `cursor`, not both")
    after = after if after is not None else cursor
    # An admin sees tampered memories, flagged; others never see them.
    filters = dict(
        project=project, status=status, type=type, include_tampered=caller.is_admin, where=where
    )
    items = mw.list_memories(after_id=after, limit=limit, **filters)
    more = len(items) == limit and bool(mw.list_memories(after_id=items[-1].id, limit=1, **filters))
    return {"items": items, "next_cursor": items[-1].id if more else None}


@router.get("/{memory_id}", response_model=MemoryOut, responses=responses(401, 403, 404, 409))
def get_memory(memory_id: MemoryId, caller: Reader, mw: MW) -> Memory:
    """A memory edited outside memwarden (its row MAC fails) is refused with 409 ``tampered``,
    except to an admin, who sees it with ``tampered: true``."""
    return mw.get(memory_id, include_tampered=caller.is_admin)


@router.patch("/{memory_id}", response_model=MemoryOut, responses=responses(401, 403, 404, 409))
def update_memory(memory_id: MemoryId, body: UpdateMemory, caller: Writer, mw: MW) -> Memory:
    """Change content, type, confidence, metadata or the cited chunk of a live memory."""
    changes = body.model_dump(exclude_unset=True, exclude={"note"})
    for name in ("content", "type", "confidence"):
        if changes.get(name, 0) is None:
            del changes[name]
    with caller.acting():
        return mw.update(memory_id, note=body.note, **changes)


def _note(body: NoteBody | None) -> str | None:
    return body.note if body is not None else None


@router.post(
    "/{memory_id}/promote", response_model=MemoryOut, responses=responses(401, 403, 404, 409)
)
def promote(memory_id: MemoryId, caller: Writer, mw: MW, body: NoteBody | None = None) -> Memory:
    """candidate -> active."""
    with caller.acting():
        return mw.promote(memory_id, _note(body))


@router.post(
    "/{memory_id}/reject", response_model=MemoryOut, responses=responses(401, 403, 404, 409)
)
def reject(memory_id: MemoryId, caller: Writer, mw: MW, body: NoteBody | None = None) -> Memory:
    """candidate -> rejected."""
    with caller.acting():
        return mw.reject(memory_id, _note(body))


@router.post(
    "/{memory_id}/invalidate", response_model=MemoryOut, responses=responses(401, 403, 404, 409)
)
def invalidate(memory_id: MemoryId, caller: Writer, mw: MW, body: NoteBody | None = None) -> Memory:
    """active -> invalid."""
    with caller.acting():
        return mw.invalidate(memory_id, _note(body))


@router.post(
    "/{memory_id}/reinforce", response_model=MemoryOut, responses=responses(401, 403, 404, 409)
)
def reinforce(memory_id: MemoryId, caller: Writer, mw: MW, body: NoteBody | None = None) -> Memory:
    """Count one more confirmation of a live memory."""
    with caller.acting():
        return mw.reinforce(memory_id, _note(body))


@router.post(
    "/{memory_id}/supersede", response_model=Superseded, responses=responses(401, 403, 404, 409)
)
def supersede(
    memory_id: MemoryId, body: SupersedeBody, caller: Writer, mw: MW
) -> dict[str, Memory]:
    """Replace an active memory by another active one, or by new content."""
    with caller.acting():
        old, successor = mw.supersede(memory_id, by=body.by, content=body.content, note=body.note)
    return {"superseded": old, "successor": successor}


@router.post(
    "/{memory_id}/revert", response_model=MemoryOut, responses=responses(401, 403, 404, 409)
)
def revert(memory_id: MemoryId, body: RevertBody, caller: Writer, mw: MW) -> Memory:
    """Put the memory back as it was after ledger row ``to_seq`` (itself an audited change)."""
    with caller.acting():
        return mw.revert(memory_id, body.to_seq, body.note)


@router.post(
    "/{memory_id}/erase", response_model=ErasedMemory, responses=responses(401, 403, 404, 409)
)
def erase(memory_id: MemoryId, body: EraseBody, caller: Admin, mw: MW) -> dict[str, Any]:
    """Erase the content for privacy: the live row, every ledger payload, the index, the
    interactions and chunks it came from (``sources``), logs and alerts quoting it (admin).
    The receipt says ``scrubbed`` or ``pending`` (an old copy still on disk, being scrubbed)."""
    with caller.acting():
        receipt = mw.erase(memory_id, body.reason, sources=body.sources, wait=body.wait)
    assert receipt.memory is not None
    return {**receipt.memory.to_dict(), "receipt": receipt.to_dict()}


@router.get(
    "/{memory_id}/erase-status",
    response_model=EraseReceiptOut,
    responses=responses(401, 403, 404),
)
def erase_status(memory_id: MemoryId, caller: Admin, mw: MW) -> dict[str, Any]:
    """The receipt of the memory's erasure: ``scrubbed`` once no old copy is left on disk."""
    return mw.erase_status(memory_id=memory_id).to_dict()
