"""The dashboard (spec 2.6): server-rendered pages under ``/dashboard`` on the API's app, and
the same overview as JSON at ``GET /admin/dashboard``.

Pages are Jinja templates shipped with the package (autoescaped: memory content is hostile
text), styled by one bundled stylesheet, with SVG charts drawn on the server and no script at
all, so the page works offline and its Content-Security-Policy forbids every script. Reads go
through the ``Memwarden`` facade; a change made here is recorded under the signed-in key.

Modules: sessions (the signed cookie and CSRF tokens), signin (the viewer of a request, the
sign-in form), routing (HTML errors), render (templates and headers), charts (SVG geometry),
pages/ (overview, memory, audit, triage, monitoring).
"""

from __future__ import annotations

from fastapi import FastAPI

from memwarden.web import signin
from memwarden.web.pages import audit, memory, monitoring, overview, triage


def install(app: FastAPI) -> None:
    """Add the dashboard's routes to the API's app."""
    app.include_router(overview.json_router)
    for module in (signin, overview, memory, audit, triage, monitoring):
        app.include_router(module.router)
    app.include_router(overview.fallback_router)


__all__ = ["install"]
