"""A memory's page: what it is now, its ledger timeline with what each version changed,
blame per field, and (admin) a revert to any earlier version, confirmed and noted."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import Response

from memwarden.serving.params import MAX_ID, MemoryId
from memwarden.serving.state import MW
from memwarden.web.render import PREFIX, page
from memwarden.web.routing import DashboardRoute, redirect
from memwarden.web.signin import CsrfField, ViewerDep, check_csrf, need

PAGE = 100  # versions per page of the timeline, newest first
Seq = Annotated[int, Query(ge=1, le=MAX_ID)]

router = APIRouter(prefix=PREFIX, route_class=DashboardRoute, include_in_schema=False)


@router.get("/memory")
def jump(viewer: ViewerDep, id: Annotated[int, Query(ge=1, le=MAX_ID)]) -> Response:
    """The header's "open memory #" box."""
    return redirect(f"{PREFIX}/memory/{id}")


@router.get("/memory/{memory_id}")
def memory_page(
    request: Request,
    memory_id: MemoryId,
    viewer: ViewerDep,
    mw: MW,
    before: Seq | None = None,
    reverted: Seq | None = None,
) -> Response:
    story = mw.memory_story(memory_id)
    newest_first = list(reversed(story.versions))
    if before is not None:
        newest_first = [v for v in newest_first if v.record.seq < before]
    shown = newest_first[:PAGE]
    older = shown[-1].record.seq if len(newest_first) > PAGE else None
    return page(
        request,
        viewer,
        "memory.html",
        story=story,
        memory=story.memory,
        versions=shown,
        total_versions=len(story.versions),
        first_page=before is None,
        older=older,
        flash=f"Reverted to the version at ledger row {reverted}." if reverted else None,
        # Who was served it: an admin's question (it names every reader).
        readers=mw.readers(memory_id, 20) if viewer.can("admin") else None,
    )


@router.get("/memory/{memory_id}/revert")
def confirm_revert(
    request: Request, memory_id: MemoryId, to: Seq, viewer: ViewerDep, mw: MW
) -> Response:
    need(viewer, "admin", "reverting a memory")
    target, changes = mw.revert_preview(memory_id, to)
    return page(
        request,
        viewer,
        "revert.html",
        memory=mw.get(memory_id),
        target=target,
        changes=changes,
    )


@router.post("/memory/{memory_id}/revert")
def revert(
    memory_id: MemoryId,
    viewer: ViewerDep,
    mw: MW,
    csrf: CsrfField,
    to_seq: Annotated[int, Form(ge=1, le=MAX_ID)],
    note: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    check_csrf(viewer, csrf)
    need(viewer, "admin", "reverting a memory")
    with viewer.caller.acting():
        mw.revert(memory_id, to_seq, note.strip() or None)
    return redirect(f"{PREFIX}/memory/{memory_id}?reverted={to_seq}")
