"""Shapes the API sends back (requests live next to their routes)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from memwarden.serving.params import ISO_DATETIME, MAX_ID, text_problem

__all__ = ["ISO_DATETIME", "MAX_ID", "text_problem"]  # re-exported for the API's routes

# An unencoded "+" in a query string arrives as a space: "…12:00:00 02:00" meant "+02:00".
PLUS_AS_SPACE = re.compile(r"(T\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?) (\d{2}:?\d{2})$")


def integral(value: Any) -> Any:
    """JSON has one number type: 3.0 is the integer 3 (but True and "3" stay refused)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _iso_datetime(value: Any) -> Any:
    """Only ISO 8601 dates and date-times (not epoch numbers); no offset means UTC, a bare
    date its midnight."""
    if isinstance(value, str):
        text = PLUS_AS_SPACE.sub(r"\1+\4", value.strip())
        if not ISO_DATETIME.match(text):
            raise ValueError(
                "expected an ISO 8601 date or date-time, e.g. 2026-05-01 or 2026-05-01T12:00:00Z"
            )
        moment = datetime.fromisoformat(text.replace("z", "Z"))
        return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return value


# An integer in a JSON body: strict, except that an integral float is accepted.
Int = Annotated[int, BeforeValidator(integral)]
# A date-time in a query string.
IsoDateTime = Annotated[datetime, BeforeValidator(_iso_datetime)]


def _check_texts(value: Any) -> None:
    if isinstance(value, str):
        problem = text_problem(value)
        if problem is not None:
            raise ValueError(problem)
    elif isinstance(value, list | tuple):
        for item in value:
            _check_texts(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_texts(key)
            _check_texts(item)


class Body(BaseModel):
    """Every request body: unknown fields and wrong types are refused (422), never coerced,
    and text neither engine can store (NULs, lone surrogates) is refused the same way."""

    model_config = ConfigDict(extra="forbid", strict=True)

    @model_validator(mode="after")
    def _storable_text(self) -> Body:
        for name in type(self).model_fields:
            _check_texts(getattr(self, name))
        return self


def _reasons(value: Any) -> Any:
    """A memory's flags as stored (JSON text, or None) or already a list."""
    if value is None:
        return []
    return json.loads(value) if isinstance(value, str) else value


def _metadata(value: Any) -> Any:
    """A memory's metadata as stored (canonical JSON text, or None) or already an object."""
    if value is None:
        return {}
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:  # only an admin's view of a tampered row shows such a text
            return {"_unreadable": value}
    return value


Metadata = Annotated[
    dict[str, Any],
    BeforeValidator(_metadata),
    Field(description="The caller's JSON object ({} when none): see docs/recall.md"),
]


class SourceOut(BaseModel):
    kind: str | None
    actor: str | None
    key: str | None


class MemoryOut(BaseModel):
    id: int
    project: str
    type: str
    content: str
    content_hash: str
    confidence: float
    status: str
    source_chunk_id: int | None
    reinforcement_count: int
    superseded_by: int | None
    created_at: datetime
    updated_at: datetime
    last_reinforced_at: datetime | None
    source: SourceOut = Field(description="Where it came from: person, agent, extraction, import")
    tier: str | None = Field(description="verified, agent, extracted or flagged")
    flags: Annotated[list[str], BeforeValidator(_reasons)] = Field(
        description="Why screening flagged it; empty when clean"
    )
    independent_reinforcements: int = Field(
        description="Reinforcements from a source other than its writer (auto-promotion counts these)"
    )
    proposes: int | None = Field(
        description="The active memory this candidate would replace, if a person approves"
    )
    metadata: Metadata = {}
    # Only in an admin's view of a row edited outside memwarden (its row MAC fails).
    tampered: bool = False


class ErasedIds(BaseModel):
    memories: list[int]
    interactions: list[int]
    chunks: list[int]
    oplog_rows: list[int]
    alerts: list[int]


class EraseReceiptOut(BaseModel):
    """What an erase removed and whether every copy has left the disk (``scrubbed``) or an
    old copy still waits in the write-ahead log or dead rows (``pending``)."""

    id: int
    requested_at: datetime
    actor: str
    reason: str
    scope: dict[str, Any]
    erased: ErasedIds
    status: Literal["scrubbed", "pending", "refused"]
    pending: list[str]
    attempts: int
    scrubbed_at: datetime | None


class ErasedMemory(MemoryOut):
    """The erased memory, with the erase's receipt."""

    receipt: EraseReceiptOut


class CreatedMemory(BaseModel):
    memory: MemoryOut
    reinforced: bool


class MemoryPage(BaseModel):
    items: list[MemoryOut]
    next_cursor: int | None


class Superseded(BaseModel):
    superseded: MemoryOut
    successor: MemoryOut


class ProjectOut(BaseModel):
    name: str
    description: str
    created_at: datetime


class StateEntryOut(BaseModel):
    project: str
    category: str
    key: str
    value: str
    source: str
    created_at: datetime
    updated_at: datetime
    tampered: bool = False  # as for MemoryOut


class IngestOut(BaseModel):
    uri: str
    status: str
    document_id: int | None
    chunks: int
    reason: str | None


class HitOut(BaseModel):
    kind: Literal["memory", "chunk"]
    id: int
    score: float
    content: str
    project: str
    provenance: dict[str, Any]
    tier: str | None = Field(None, description="verified, agent, extracted or flagged")
    source: dict[str, Any] | None = Field(None, description="Who wrote it, or its document")


WITHHELD = (
    "Left out as changed outside memwarden (their row MAC fails; an operator is alerted): "
    "0 unless the store was tampered with"
)


class RecallOut(BaseModel):
    query: str
    mode: str = "hybrid"
    mode_used: str = "hybrid"
    fallback: str | None = None
    withheld: int = Field(0, description=f"Memories that would have been served. {WITHHELD}")
    hits: list[HitOut]


class ContextItemOut(BaseModel):
    kind: Literal["state", "memory", "chunk"]
    text: str
    provenance: dict[str, Any]
    tier: str | None = None
    verified: bool = Field(description="Project state, or a memory a person wrote or approved")


class ContextPackOut(BaseModel):
    query: str
    project: str
    budget: int
    used: int
    omitted: int = Field(description="Items left out for the budget")
    withheld: int = Field(0, description=f"State entries and memories. {WITHHELD}")
    mode: str = "hybrid"
    mode_used: str = "hybrid"
    fallback: str | None = None
    items: list[ContextItemOut]
    text: str


class LedgerEntryOut(BaseModel):
    seq: int
    entity_type: str
    entity_id: str
    project: str | None
    action: str
    actor: str
    ts: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    note: str | None
    extra: dict[str, Any] | None
    erased: bool
    authentic: bool | None = Field(
        default=None,
        description="False: the row or its payload fails its tag (edited outside memwarden)",
    )


class MemoryAudit(BaseModel):
    memory_id: int
    entries: list[LedgerEntryOut]


class RecentAudit(BaseModel):
    entries: list[LedgerEntryOut]
    next_before_seq: int | None


class HeadOut(BaseModel):
    seq: int
    tag: str
    anchor: str


class VerifyOut(BaseModel):
    ok: bool
    rows_checked: int
    seconds: float
    rows_per_second: int
    first_bad_seq: int | None
    reason: str | None
    head: dict[str, Any] | None
    checked_against: list[str]


class FaultOut(BaseModel):
    key: str
    title: str
    message: str
    severity: str
    since: str
    last_seen: str
    occurrences: int


class HealthOut(BaseModel):
    status: Literal["ok", "degraded", "unavailable"]
    database: Literal["reachable", "unreachable"]
    engine: str | None = None
    schema_revisions: list[str] | None = None
    schema_current: bool | None = None
    ledger_head: dict[str, Any] | None = None
    faults: list[FaultOut] = []
    recall: dict[str, Any] | None = None
    error: dict[str, str] | None = None
