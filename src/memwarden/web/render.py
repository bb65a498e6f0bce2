"""Rendering dashboard pages: one Jinja environment (autoescape on for every template: memory
content is hostile text), the filters the templates share, and the headers every page carries.

The pages use no script at all, so the Content-Security-Policy forbids every script, inline or
not; styles come only from the dashboard's own stylesheet (no inline ``style``), charts are
inline SVG drawn with presentation attributes.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from memwarden.web.sessions import COOKIE, SESSION_SECONDS, Session
from memwarden.web.viewer import Viewer

PREFIX = "/dashboard"
CSP = (
    "default-src 'none'; script-src 'none'; style-src 'self'; img-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def _ts(value: Any) -> str:
    """A ledger timestamp or a datetime as ``YYYY-MM-DD HH:MM:SS`` (UTC)."""
    if value is None:
        return "—"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    text = str(value)
    return text[:19].replace("T", " ") if len(text) >= 19 else text


def _ts_short(value: Any) -> str:
    """``MM-DD HH:MM``, for narrow tables."""
    return _ts(value)[5:16]


def _value(value: Any) -> str:
    """A snapshot value as text: strings as they are, the rest as JSON."""
    if value is None:
        return "null"
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def _short(value: Any, width: int = 100) -> str:
    text = _value(value)
    return text if len(text) <= width else text[: width - 1] + "…"


def _number(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.1f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("memwarden.web", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(ts=_ts, ts_short=_ts_short, value=_value, short=_short, number=_number)
    env.globals["prefix"] = PREFIX
    return env


ENV = _environment()


def html(name: str, **context: Any) -> str:
    return ENV.get_template(name).render(**context)


def page(
    request: Request,
    viewer: Viewer | None,
    name: str,
    *,
    status: int = 200,
    session: Session | None = None,
    **context: Any,
) -> HTMLResponse:
    """A page; sets the session cookie when the viewer's session (or ``session``) is new."""
    body = html(name, viewer=viewer, path=request.url.path, **context)
    response = HTMLResponse(body, status_code=status, headers=SECURITY_HEADERS)
    if session is None and viewer is not None and viewer.fresh:
        session = viewer.session
    if session is not None:
        set_cookie(response, request, session.cookie)
    return response


def set_cookie(
    response: Response, request: Request, value: str, max_age: int = SESSION_SECONDS
) -> None:
    """HttpOnly (no script reads it), SameSite=Strict (no other site's page sends it),
    Secure when served over HTTPS, and scoped to the dashboard's paths."""
    response.set_cookie(
        COOKIE,
        value,
        max_age=max_age,
        path=PREFIX,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


def clear_cookie(response: Response, request: Request) -> None:
    set_cookie(response, request, "", max_age=0)
