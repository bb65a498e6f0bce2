"""The integrity scan's latest run, for the admin (the dashboard reads the same through the
library)."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel

from memwarden.serving.auth import Admin
from memwarden.serving.errors import responses
from memwarden.serving.state import MW

router = APIRouter(tags=["integrity"])

NEVER_RUN = (
    "no integrity scan has run yet: run `memwarden integrity check` (or `memwarden nightly`)"
)


class FindingOut(BaseModel):
    check: str
    severity: Literal["warning", "critical"]
    count: int
    examples: list[int | str]
    message: str


class CheckOut(BaseModel):
    name: str
    status: Literal["ok", "findings", "skipped", "error"]
    seconds: float
    scanned: int
    found: int
    detail: str | None


class RepairOut(BaseModel):
    check: str
    target: int | str
    action: str
    note: str
    applied: bool
    error: str | None


class IntegrityRunOut(BaseModel):
    id: int | None
    started_at: str
    finished_at: str | None
    seconds: float | None
    full: bool
    status: Literal["clean", "findings", "error"]
    findings: list[FindingOut]
    checks: list[CheckOut]
    repairs: list[RepairOut]
    ledger_verified_seq: int
    error: str | None


class IntegrityOut(BaseModel):
    run: IntegrityRunOut | None
    message: str


@router.get("/admin/integrity", response_model=IntegrityOut, responses=responses(401, 403))
def latest(caller: Admin, mw: MW) -> dict[str, Any]:
    """The latest integrity scan: its status (clean, findings or error), each finding with its
    count and up to 20 example ids, and how each check went. ``run`` is null before the first
    scan."""
    run = mw.latest_integrity()
    if run is None:
        return {"run": None, "message": NEVER_RUN}
    total = sum(f.count for f in run.findings)
    message = {
        "clean": "clean",
        "findings": f"{total} findings",
        "error": "the scan could not run every check",
    }[run.status]
    return {"run": run.to_dict(), "message": message}
