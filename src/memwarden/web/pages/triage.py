"""Triage: the candidate queue, newest first, with promote and reject (write role).

A decision made here is recorded under the signed-in key (``api:<name>``), not the CLI's
``human-triage``: the dashboard knows who decided."""

from __future__ import annotations

from typing import Annotated, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import Response

from memwarden.serving.params import MAX_ID, MemoryId
from memwarden.serving.state import MW
from memwarden.web.render import PREFIX, page
from memwarden.web.routing import DashboardRoute, redirect
from memwarden.web.signin import CsrfField, ViewerDep, check_csrf, need

PAGE = 25
Decision = Literal["promote", "reject"]
DONE = {"promote": "promoted", "reject": "rejected"}

router = APIRouter(prefix=PREFIX, route_class=DashboardRoute, include_in_schema=False)


@router.get("/triage")
def queue(
    request: Request,
    viewer: ViewerDep,
    mw: MW,
    project: Annotated[str, Query(max_length=100)] = "",
    after: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    done: Literal["promoted", "rejected"] | None = None,
    memory: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
) -> Response:
    chosen = project.strip() or None
    items = mw.triage_queue(project=chosen, after_id=after, limit=PAGE + 1)
    flash = f"Memory #{memory} {done} as {viewer.actor}." if done and memory else None
    more = items[PAGE - 1].memory.id if len(items) > PAGE else None
    return page(
        request,
        viewer,
        "triage.html",
        items=items[:PAGE],
        size=mw.triage_size(chosen),
        project=chosen or "",
        projects=[p.name for p in mw.list_projects()],
        after=after,
        more=more,
        flash=flash,
    )


@router.post("/triage/{memory_id}/{decision}")
def decide(
    memory_id: MemoryId,
    decision: Decision,
    viewer: ViewerDep,
    mw: MW,
    csrf: CsrfField,
    note: Annotated[str, Form(max_length=2000)] = "",
    project: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    check_csrf(viewer, csrf)
    need(viewer, "write", "triage")
    with viewer.caller.acting():
        if decision == "promote":
            mw.promote(memory_id, note.strip() or None)
        else:
            mw.reject(memory_id, note.strip() or None)
    query: dict[str, str | int] = {"done": DONE[decision], "memory": memory_id}
    if project.strip():
        query["project"] = project.strip()
    return redirect(f"{PREFIX}/triage?{urlencode(query)}")
