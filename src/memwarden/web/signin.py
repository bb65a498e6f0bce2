"""Signing in to the dashboard with an API key, and finding the viewer of every page.

The key is posted once, checked like the API checks it, and exchanged for a session cookie
that names the key by id (``sessions``). Roles are the API's: read sees, write may triage,
admin may revert and verify. With no key configured and the server on loopback the dashboard
is open like the API, but only to requests that name a loopback host: a page of another site
whose name was re-pointed at 127.0.0.1 (DNS rebinding) is refused.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import Response

from memwarden.core.provenance import OPERATOR
from memwarden.serving.auth import OPEN_ACTOR, Caller, loopback_host
from memwarden.serving.state import backend_of
from memwarden.web.render import PREFIX, clear_cookie, page, set_cookie
from memwarden.web.routing import DashboardRoute, Refused, SignInRequired, redirect
from memwarden.web.sessions import COOKIE, Sessions, load_secret, same_text
from memwarden.web.viewer import Viewer

_lock = threading.Lock()


def sessions_of(request: Request) -> Sessions:
    """The app's session codec, its secret loaded (or made) on first use."""
    state = request.app.state
    found: Sessions | None = getattr(state, "dashboard_sessions", None)
    if found is None:
        with _lock:
            found = getattr(state, "dashboard_sessions", None)
            if found is None:
                found = Sessions(load_secret(backend_of(request).settings.data_home))
                state.dashboard_sessions = found
    return found


def current_viewer(request: Request) -> Viewer:
    """The viewer of this request; raises SignInRequired when a key is needed and missing."""
    backend = backend_of(request)
    mw = backend.get()
    sessions = sessions_of(request)
    session = sessions.read(request.cookies.get(COOKIE))
    if session is not None and session.signed_in and mw.session_ended(session.nonce):
        session = None  # signed out: the cookie no longer opens anything
    if session is not None and session.signed_in:
        key = mw.api_key(session.key_id)
        if key is not None and not key.revoked:
            # A person signed in with this key: trusted to triage, within the key's scopes.
            caller = Caller(key.actor, key.role, key.name, key.principal(person=True))
            request.state.caller = caller
            return Viewer(caller, session, sessions.csrf_token(session))
    if mw.keys_configured() or not backend.open_allowed:
        raise SignInRequired()
    if not loopback_host(request):
        raise Refused(
            "this dashboard has no API keys and answers only on a loopback address "
            "(127.0.0.1, ::1, localhost)"
        )
    fresh = session is None or session.signed_in
    if fresh:
        session = sessions.issue()
    assert session is not None
    caller = Caller(OPEN_ACTOR, "admin", None, OPERATOR)
    request.state.caller = caller
    return Viewer(caller, session, sessions.csrf_token(session), fresh)


ViewerDep = Annotated[Viewer, Depends(current_viewer)]
CsrfField = Annotated[str, Form(max_length=200)]


def need(viewer: Viewer, role: str, doing: str) -> None:
    if not viewer.can(role):
        raise Refused(
            f"the key {viewer.name!r} has role {viewer.role}; {doing} needs the {role} role"
        )


def check_csrf(viewer: Viewer, token: str) -> None:
    if not same_text(viewer.csrf, token):
        raise Refused("this form has expired or did not come from this dashboard: reload the page")


def safe_next(target: str | None) -> str:
    """Only a dashboard path: never another site (an open redirect)."""
    if target and target.startswith(PREFIX) and target.isprintable() and "\\" not in target:
        return target
    return f"{PREFIX}/"


router = APIRouter(prefix=PREFIX, route_class=DashboardRoute, include_in_schema=False)


@router.get("/login")
def login_form(request: Request, next: str | None = None) -> Response:
    backend = backend_of(request)
    mw = backend.get()
    if not mw.keys_configured() and backend.open_allowed:
        return redirect(safe_next(next))
    sessions = sessions_of(request)
    session = sessions.read(request.cookies.get(COOKIE))
    fresh = session is None
    if session is None:
        session = sessions.issue()
    return page(
        request,
        None,
        "login.html",
        session=session if fresh else None,
        csrf=sessions.csrf_token(session),
        next=safe_next(next),
        error=None,
        keys_configured=mw.keys_configured(),
    )


@router.post("/login")
def login(
    request: Request,
    key: Annotated[str, Form(max_length=300)],
    csrf: CsrfField,
    next: Annotated[str, Form(max_length=2000)] = f"{PREFIX}/",
) -> Response:
    sessions = sessions_of(request)
    session = sessions.read(request.cookies.get(COOKIE))
    if session is None or not sessions.csrf_ok(session, csrf):
        raise Refused("this form has expired or did not come from this dashboard: reload the page")
    mw = backend_of(request).get()
    result = mw.authenticate(key)
    if result.key is None or not result.ok:
        return page(
            request,
            None,
            "login.html",
            status=401,
            csrf=sessions.csrf_token(session),
            next=safe_next(next),
            error=result.reason or "unknown API key",
            keys_configured=mw.keys_configured(),
        )
    signed_in = sessions.issue(result.key.id)  # a new session: never the one from before
    response = redirect(safe_next(next))
    set_cookie(response, request, signed_in.cookie)
    return response


@router.post("/logout")
def logout(request: Request, viewer: ViewerDep, csrf: CsrfField) -> Response:
    check_csrf(viewer, csrf)
    session = viewer.session
    if session.signed_in:
        # End it on the server too: a copy of the cookie must not outlive the sign-out.
        expires = datetime.fromtimestamp(session.issued, UTC) + timedelta(
            seconds=sessions_of(request).lifetime
        )
        backend_of(request).get().end_session(session.nonce, expires)
    response = redirect(f"{PREFIX}/login")
    clear_cookie(response, request)
    return response
