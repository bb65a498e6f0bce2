"""The overview (``/dashboard/``), its JSON twin for scripts (``GET /admin/dashboard``), and
the stylesheet."""

from __future__ import annotations

from importlib import resources
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from memwarden.serving.auth import Admin
from memwarden.serving.errors import responses
from memwarden.serving.state import MW
from memwarden.web import charts
from memwarden.web.render import PREFIX, page
from memwarden.web.routing import DashboardRoute, redirect
from memwarden.web.signin import ViewerDep

# Integrity checks whose examples are memory ids: the overview links them to memory pages.
MEMORY_CHECKS = frozenset(
    {
        "dangling_chunk_refs",
        "duplicate_memories",
        "supersede_dangling",
        "supersede_loops",
        "supersede_missing_successor",
        "audit_gap_replay",
        "audit_gap_unrecorded",
    }
)

router = APIRouter(prefix=PREFIX, route_class=DashboardRoute, include_in_schema=False)
json_router = APIRouter(tags=["dashboard"])
# Included after every page: unknown dashboard paths get a page, not the API's JSON 404.
fallback_router = APIRouter(prefix=PREFIX, route_class=DashboardRoute, include_in_schema=False)

STATIC = {"dashboard.css": "text/css", "favicon.svg": "image/svg+xml"}
_FILES = {
    name: (resources.files("memwarden.web") / "static" / name).read_bytes() for name in STATIC
}


@router.get("/static/{name}")
def static(name: str) -> Response:
    """The stylesheet and the icon, bundled: the dashboard loads nothing from elsewhere."""
    if name not in STATIC:
        return Response(status_code=404)
    return Response(
        _FILES[name],
        media_type=STATIC[name],
        headers={"Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"},
    )


@router.get("")
def bare() -> Response:
    return redirect(f"{PREFIX}/")


@router.get("/")
def overview(request: Request, viewer: ViewerDep, mw: MW) -> Response:
    dash = mw.dashboard()
    settings = mw.settings
    per_day = charts.bars([(d.day.strftime("%m-%d"), d.count) for d in dash.mutations_per_day])
    harness = charts.line(
        [(r.started_at.strftime("%Y-%m-%d %H:%M"), r.pass_rate) for r in dash.harness],
        threshold=settings.harness_min_pass_rate,
    )
    return page(
        request,
        viewer,
        "overview.html",
        dash=dash,
        per_day_chart=per_day,
        harness_chart=harness,
        memory_checks=MEMORY_CHECKS,
        thresholds={
            "queue": settings.candidate_queue_max,
            "harness": settings.harness_min_pass_rate,
        },
    )


@fallback_router.get("/{unknown:path}")
def not_found(request: Request, viewer: ViewerDep) -> Response:
    """Any other dashboard path: a page saying so (installed last, so it shadows nothing)."""
    return page(
        request, viewer, "error.html", status=404, title="Not found",
        message=f"no dashboard page at {request.url.path}",
    )  # fmt: skip


@json_router.get("/admin/dashboard", responses=responses(401, 403))
def dashboard_json(caller: Admin, mw: MW) -> dict[str, Any]:
    """What the dashboard's overview shows, for scripts: counts by status, type and project,
    the candidate queue, the last nightly run, the latest integrity scan, alerts (last per
    severity and recent history with delivery outcome), the last 10 mutations, mutations per
    day and the harness pass rate over time."""
    return mw.dashboard().to_dict()
