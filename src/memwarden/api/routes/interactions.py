"""Interactions: capture an agent's exchange, the raw material of extraction."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path
from pydantic import BaseModel, Field

from memwarden.api.models import MAX_ID, Body
from memwarden.core.capture import MAX_FUTURE_SKEW, Interaction
from memwarden.serving.auth import Reader, Writer
from memwarden.serving.errors import responses
from memwarden.serving.state import MW

router = APIRouter(prefix="/interactions", tags=["interactions"])

InteractionId = Annotated[int, Path(ge=1, le=MAX_ID, description="The interaction's id")]


class CaptureInteraction(Body):
    project: str = Field(min_length=1, max_length=100)
    prompt: str = Field(description="What the agent was asked")
    response: str = Field(description="What it answered")
    client: str = Field("", max_length=200, description="The agent or tool that had the exchange")
    # Text, not a datetime: the library parses it exactly as it does an imported line's time.
    created_at: str | None = Field(
        None,
        max_length=64,
        description="When the exchange happened, ISO 8601 (no offset means UTC), at most "
        f"{MAX_FUTURE_SKEW.total_seconds() / 60:g} minutes ahead; default now. For importing "
        "past exchanges.",
        json_schema_extra={"format": "date-time"},
    )


class InteractionOut(BaseModel):
    id: int
    project: str
    prompt: str
    response: str
    client: str
    created_at: datetime


@router.post("", status_code=201, response_model=InteractionOut, responses=responses(401, 403, 404))
def capture_interaction(body: CaptureInteraction, caller: Writer, mw: MW) -> Interaction:
    """Store one exchange; `memwarden extract` later turns it into candidate memories."""
    with caller.acting():
        return mw.capture(body.project, body.prompt, body.response, body.client, body.created_at)


@router.get("/{interaction_id}", response_model=InteractionOut, responses=responses(401, 403, 404))
def read_interaction(interaction_id: InteractionId, caller: Reader, mw: MW) -> Interaction:
    return mw.get_interaction(interaction_id)
