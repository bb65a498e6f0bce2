"""The audit trail: one memory's full history, recent changes across everything, and the
admin's verify and anchor."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from memwarden.api.models import (
    MAX_ID,
    Body,
    HeadOut,
    Int,
    IsoDateTime,
    MemoryAudit,
    RecentAudit,
    VerifyOut,
)
from memwarden.audit.verify import parse_anchor
from memwarden.errors import InvalidInputError
from memwarden.serving.auth import Admin, Reader
from memwarden.serving.errors import responses
from memwarden.serving.params import MemoryId
from memwarden.serving.state import MW

router = APIRouter(tags=["audit"])

Filter = Annotated[str | None, Query(min_length=1, max_length=200)]


class VerifyBody(Body):
    from_seq: Int = Field(1, ge=1, le=MAX_ID, description="Start the walk at this row")
    anchor: str | None = Field(
        None, max_length=200, description="SEQ:TAG kept from an earlier `anchor`: checked too"
    )


def _utc(moment: datetime | None, name: str) -> datetime | None:
    if moment is None:
        return None
    try:
        moment = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
        return moment.astimezone(UTC)
    except (OverflowError, ValueError) as exc:
        raise InvalidInputError(f"{name} is out of range") from exc


@router.get(
    "/memory/{memory_id}/audit", response_model=MemoryAudit, responses=responses(401, 403, 404)
)
def memory_audit(memory_id: MemoryId, caller: Reader, mw: MW) -> dict[str, Any]:
    """Every ledger entry of one memory, oldest first: who changed what, when, and why."""
    return {"memory_id": memory_id, "entries": [r.to_dict() for r in mw.history(memory_id)]}


class ServedOut(BaseModel):
    memory_id: int
    seq: int | None = Field(description="The ledger row of the version served")
    actor: str
    key_name: str | None
    operation: str = Field(description="recall, context or get")
    served_at: datetime


class ReadersOut(BaseModel):
    memory_id: int
    readers: list[ServedOut]


@router.get(
    "/admin/memory/{memory_id}/readers",
    response_model=ReadersOut,
    responses=responses(401, 403, 404),
)
def readers(
    memory_id: MemoryId,
    caller: Admin,
    mw: MW,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> dict[str, Any]:
    """Who was served this memory (recall, context, get), newest first, and which version."""
    return {
        "memory_id": memory_id,
        "readers": [served.__dict__ for served in mw.readers(memory_id, limit)],
    }


@router.get("/admin/audit/recent", response_model=RecentAudit, responses=responses(401, 403))
def recent(
    caller: Admin,
    mw: MW,
    actor: Filter = None,
    action: Filter = None,
    project: Filter = None,
    entity_type: Filter = None,
    since: Annotated[IsoDateTime | None, Query(description="ISO 8601; UTC when no offset")] = None,
    until: Annotated[IsoDateTime | None, Query(description="ISO 8601; UTC when no offset")] = None,
    before_seq: Annotated[
        int | None, Query(ge=1, le=MAX_ID, description="Cursor: next_before_seq of the last page")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> dict[str, Any]:
    """The latest ledger entries across every entity, newest first (50 by default)."""
    entries = mw.recent(
        actor=actor,
        action=action,
        project=project,
        entity_type=entity_type,
        since=_utc(since, "since"),
        until=_utc(until, "until"),
        before_seq=before_seq,
        limit=limit,
    )
    cursor = entries[-1].seq if len(entries) == limit and entries[-1].seq > 1 else None
    return {"entries": [entry.to_dict() for entry in entries], "next_before_seq": cursor}


@router.post("/admin/audit/verify", response_model=VerifyOut, responses=responses(401, 403))
def verify(caller: Admin, mw: MW, body: VerifyBody | None = None) -> dict[str, Any]:
    """Re-derive the chain: any edited, deleted, reordered, forged or replayed row, a cut tail or
    a database put back from an older copy makes ``ok`` false, with the first bad row."""
    body = body or VerifyBody()
    anchor = parse_anchor(body.anchor) if body.anchor else None
    return mw.verify(from_seq=body.from_seq, anchor=anchor).to_dict()


@router.get("/admin/audit/anchor", response_model=HeadOut, responses=responses(401, 403))
def anchor(caller: Admin, mw: MW) -> dict[str, Any]:
    """The ledger head, to keep somewhere else and check against later with verify."""
    head = mw.anchor()
    return {"seq": head.seq, "tag": head.tag, "anchor": f"{head.seq}:{head.tag}"}
