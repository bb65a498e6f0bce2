"""Recall (ranked memories and chunks, with provenance) and the context pack."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter
from pydantic import Field

from memwarden.api.models import Body, ContextPackOut, Int, RecallOut
from memwarden.serving.auth import Reader
from memwarden.serving.errors import responses
from memwarden.serving.state import MW

router = APIRouter(tags=["recall"])
Tier = Literal["verified", "agent", "extracted", "flagged"]


Where = dict[str, str | int | float | bool]
RankBy = Literal["relevance", "recency", "importance"]
WHERE_HELP = "Metadata filter: every key must hold this scalar (compared as text); memories only"
RANK_BY_HELP = "relevance (default), or relevance blended with recency or importance"
HALF_LIFE_HELP = "With rank_by recency: the age in days at which recency counts half (default 30)"


class RecallBody(Body):
    query: str = Field(min_length=1, max_length=2000)
    project: str | None = Field(None, min_length=1, max_length=100)
    types: list[str] | None = Field(None, max_length=20, description="Memory types; no chunks then")
    k: Int = Field(10, ge=1, le=100)
    include_chunks: bool = True
    mode: Literal["hybrid", "text", "semantic"] | None = Field(
        None, description="hybrid (default), text or semantic; without an embedder: text"
    )
    include_superseded: bool = Field(
        False, description="Also memories superseded recently, marked with what replaced them"
    )
    min_tier: Tier | None = Field(
        None, description="Only hits at least this trusted (verified > agent > extracted > flagged)"
    )
    where: Where | None = Field(None, max_length=8, description=WHERE_HELP)
    rank_by: RankBy | None = Field(None, description=RANK_BY_HELP)
    half_life_days: float | None = Field(None, ge=0.01, le=36500, description=HALF_LIFE_HELP)


class ContextBody(Body):
    query: str = Field(min_length=1, max_length=2000)
    project: str = Field(min_length=1, max_length=100)
    budget: Int = Field(4000, ge=100, le=1_000_000, description="Characters")
    mode: Literal["hybrid", "text", "semantic"] | None = Field(
        None, description="How memories and chunks are ranked (as in /recall)"
    )
    min_tier: Tier | None = Field(None, description="Only memories at least this trusted")
    where: Where | None = Field(
        None, max_length=8, description=WHERE_HELP + " (the pack then holds no passages)"
    )
    rank_by: RankBy | None = Field(None, description=RANK_BY_HELP + " (as in /recall)")
    half_life_days: float | None = Field(None, ge=0.01, le=36500, description=HALF_LIFE_HELP)


@router.post("/recall", response_model=RecallOut, responses=responses(401, 403, 404))
def recall(body: RecallBody, caller: Reader, mw: MW) -> dict[str, Any]:
    """Active memories and source chunks ranked for the query, each with its provenance."""
    found = mw.recall_detailed(
        body.query,
        body.project,
        body.types,
        body.k,
        include_chunks=body.include_chunks,
        mode=body.mode,
        include_superseded=body.include_superseded,
        min_tier=body.min_tier,
        where=body.where,
        rank_by=body.rank_by,
        half_life_days=body.half_life_days,
    )
    return {"query": body.query, **found.to_dict()}


@router.post("/context/build", response_model=ContextPackOut, responses=responses(401, 403, 404))
def build_context(body: ContextBody, caller: Reader, mw: MW) -> dict[str, Any]:
    """A ready-to-paste pack: project state, then memories, then chunks, within the budget."""
    return mw.context(
        body.query,
        body.project,
        body.budget,
        body.mode,
        min_tier=body.min_tier,
        where=body.where,
        rank_by=body.rank_by,
        half_life_days=body.half_life_days,
    ).to_dict()
