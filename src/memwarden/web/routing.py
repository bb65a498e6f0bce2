"""The dashboard's routes answer in HTML, errors included: a custom route class turns what
the API would render as JSON (domain errors, refused parameters, a database outage) into a
page, and a missing sign-in into a redirect to the sign-in form."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any
from urllib.parse import urlencode

import structlog
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from sqlalchemy.exc import DataError, IntegrityError, InterfaceError, OperationalError
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from memwarden.errors import MemwardenError, first_line
from memwarden.serving.errors import ApiError, status_of
from memwarden.web.render import PREFIX, SECURITY_HEADERS, page

log = structlog.get_logger(__name__)

Handler = Callable[[Request], Coroutine[Any, Any, Response]]


class SignInRequired(Exception):
    """No session, an expired one, or its key was revoked: off to the sign-in form."""


class Refused(Exception):
    """The viewer may not do this (role, CSRF, host): a 403 page saying why."""

    def __init__(self, message: str, status: int = 403) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def redirect(location: str) -> RedirectResponse:
    """See other: after a form, the browser GETs the page (a reload never re-posts)."""
    return RedirectResponse(location, status_code=303, headers=SECURITY_HEADERS)


def sign_in_redirect(request: Request) -> RedirectResponse:
    """To the sign-in form, and back here after it (a form post goes back to the overview:
    it would not be sent again)."""
    target = request.url.path if request.method == "GET" else f"{PREFIX}/"
    if request.method == "GET" and request.url.query:
        target += "?" + request.url.query
    return redirect(f"{PREFIX}/login?" + urlencode({"next": target}))


def error_page(request: Request, status: int, title: str, message: str) -> Response:
    return page(request, None, "error.html", status=status, title=title, message=message)


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for error in list(exc.errors())[:5]:
        where = ".".join(str(p) for p in error.get("loc", ()) if p not in ("query", "body", "path"))
        parts.append(f"{where or 'request'}: {error.get('msg', '')}")
    return "; ".join(parts)


class DashboardRoute(APIRoute):
    def get_route_handler(self) -> Handler:
        handler = super().get_route_handler()

        async def answer(request: Request) -> Response:
            try:
                return await handler(request)
            except SignInRequired:
                return sign_in_redirect(request)
            except Refused as exc:
                return error_page(request, exc.status, "Not allowed", exc.message)
            except MemwardenError as exc:
                status = status_of(exc)
                title = "Not found" if status == 404 else "Could not do that"
                return error_page(request, status, title, str(exc))
            except ApiError as exc:
                return error_page(request, exc.status, "Refused", exc.message)
            except RequestValidationError as exc:
                return error_page(request, 422, "Invalid request", _validation_message(exc))
            except (OperationalError, InterfaceError, IntegrityError, DataError) as exc:
                first = first_line(exc)
                if isinstance(exc, IntegrityError):
                    log.warning("dashboard_conflict", error=first)
                    return error_page(request, 409, "Conflict", "a concurrent change won: retry")
                if isinstance(exc, DataError):
                    log.warning("dashboard_data_refused", error=first)
                    return error_page(request, 422, "Invalid value", first)
                log.error("dashboard_database_unavailable", error=first)
                return error_page(request, 503, "Database unavailable", first)

        return answer
