"""Every error the HTTP API returns, in one place: ``{"error": {"code", "message"}}``.

Domain errors map to status codes here and nowhere else; FastAPI's own validation errors,
unknown routes and methods, oversized bodies and database outages take the same shape.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import DataError, IntegrityError, InterfaceError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from memwarden.errors import (
    ConflictError,
    ForbiddenError,
    IllegalTransitionError,
    InvalidInputError,
    LedgerError,
    MemwardenError,
    NotFoundError,
    RateLimitedError,
    StorageError,
    first_line,
)
from memwarden.serving.params import text_problem

log = structlog.get_logger(__name__)

# Most specific first: the first class an error is an instance of decides its status.
DOMAIN_STATUS: tuple[tuple[type[MemwardenError], int], ...] = (
    (NotFoundError, 404),
    (ForbiddenError, 403),
    (RateLimitedError, 429),
    (IllegalTransitionError, 409),
    (ConflictError, 409),
    (InvalidInputError, 422),
    (StorageError, 503),  # unreachable, not a database, or at another schema version
    (LedgerError, 503),  # the ledger cannot be trusted or (strict mode) written
)

HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid",
    429: "rate_limited",
    503: "unavailable",
}

DESCRIPTIONS = {
    401: "No key, an unknown key or a revoked key",
    403: "The key's role or scopes do not allow this (route, project or operation)",
    404: "No such memory, project, key or state entry",
    409: "An illegal lifecycle transition, or a conflict with what exists",
    413: "The request body is over the limit",
    429: "Too many writes from this key: wait the Retry-After seconds",
    422: "Invalid input: malformed or too deeply nested JSON, wrong types, unknown fields, "
    "values out of range",
    503: "The database (or the ledger) is unavailable",
}


class ErrorDetail(BaseModel):
    code: str
    message: str
    details: list[dict[str, Any]] | None = None


class ErrorBody(BaseModel):
    error: ErrorDetail


class ApiError(Exception):
    """An error raised by the API layer itself (auth, limits), rendered like any other."""

    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers


class BodyTooLarge(StarletteHTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is over the limit of {limit} bytes")


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The error responses a route declares in the OpenAPI document (for clients and tests)."""
    return {
        status: {"model": ErrorBody, "description": DESCRIPTIONS[status]}
        for status in sorted({*statuses, 413, 422, 503})
    }


def error_response(
    status: int,
    code: str,
    message: str,
    headers: dict[str, str] | None = None,
    details: list[dict[str, Any]] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        body["details"] = details
    return JSONResponse({"error": body}, status_code=status, headers=headers)


def status_of(exc: MemwardenError) -> int:
    for kind, status in DOMAIN_STATUS:
        if isinstance(exc, kind):
            return status
    return 422  # a deliberate domain refusal the table does not name yet


def _domain(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, MemwardenError)
    # A fault a wait can cure (a held lock, a restarting server) says when to come back.
    retry_after = getattr(exc, "retry_after", None)
    headers = {"Retry-After": str(retry_after)} if retry_after else None
    return error_response(status_of(exc), exc.code, str(exc), headers)


def _api(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.code, exc.message, exc.headers)


def _http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    status = exc.status_code
    message = str(exc.detail)
    headers = dict(exc.headers) if exc.headers else None
    if status == 400 and message == "There was an error parsing the body":
        if isinstance(exc.__cause__, RecursionError):
            # Perhaps valid JSON, but deeper than Python's parser goes: say that, not "invalid".
            return error_response(422, "json_too_deep", "the JSON body is nested too deeply")
        # FastAPI's words for a body it could not decode (not UTF-8, say): malformed JSON.
        return error_response(422, "malformed_json", "the body is not valid UTF-8 JSON")
    if status == 404 and message == "Not Found":
        message = f"no route {request.method} {request.url.path}"
    elif status == 405:
        message = f"method {request.method} is not allowed on {request.url.path}"
        allow = _allowed_methods(request, (headers or {}).get("Allow", ""))
        headers = {**(headers or {}), "Allow": allow}
    return error_response(status, HTTP_CODES.get(status, "http_error"), message, headers)


def _allowed_methods(request: Request, fallback: str) -> str:
    """Every method the API documents at this path (Starlette names only one route's)."""
    table: list[tuple[re.Pattern[str], list[str]]] | None = getattr(
        request.app.state, "allowed_methods", None
    )
    if table is None:
        table = []
        for template, operations in request.app.openapi().get("paths", {}).items():
            pattern = re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template))
            table.append((re.compile(f"^{pattern}$"), [m.upper() for m in operations]))
        request.app.state.allowed_methods = table
    path = request.url.path
    methods = sorted({m for pattern, found in table if pattern.match(path) for m in found})
    return ", ".join(methods) if methods else fallback


def _location(loc: Sequence[Any]) -> str:
    return ".".join(str(part) for part in loc) or "request"


def _validation(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    if any(error.get("type") == "json_invalid" for error in errors):
        first = errors[0]
        return error_response(
            422, "malformed_json", f"the body is not valid JSON: {first.get('msg', '')}".strip()
        )
    details = [
        {
            "loc": [str(part) for part in e.get("loc", ())],
            "msg": str(e.get("msg", "")),
            "type": str(e.get("type", "")),
        }
        for e in errors
    ]
    summary = "; ".join(f"{_location(e['loc'])}: {e['msg']}" for e in details[:5])
    if len(details) > 5:
        summary += f"; and {len(details) - 5} more"
    return error_response(422, "validation", summary, details=jsonable_encoder(details))


def _database(_: Request, exc: Exception) -> JSONResponse:
    first = first_line(exc)
    if isinstance(exc, DataError):
        log.warning("api_data_refused", error=first)
        return error_response(422, "invalid", f"the database refused a value: {first}")
    if isinstance(exc, IntegrityError):
        log.warning("api_integrity_conflict", error=first)
        return error_response(409, "conflict", "the change conflicts with a concurrent one: retry")
    log.error("api_database_unavailable", error=first, error_type=type(exc).__name__)
    return error_response(503, "storage_unavailable", f"the database is unavailable: {first}")


def _internal(request: Request, exc: Exception) -> JSONResponse:
    log.error(
        "api_internal_error",
        method=request.method,
        path=request.url.path,
        error_type=type(exc).__name__,
        error=str(exc).splitlines()[0] if str(exc) else "",
    )
    return error_response(500, "internal", "an internal error occurred; it has been logged")


async def check_parameters(request: Request) -> None:
    """App-wide: path and query values neither engine can store are refused up front."""
    for source in (request.path_params, request.query_params):
        for name, value in source.items():
            problem = text_problem(str(value))
            if problem is not None:
                raise ApiError(422, "invalid", f"{name}: {problem}")


def install(app: FastAPI) -> None:
    app.add_exception_handler(MemwardenError, _domain)
    app.add_exception_handler(ApiError, _api)
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_exception_handler(RequestValidationError, _validation)
    for kind in (OperationalError, InterfaceError, IntegrityError, DataError):
        app.add_exception_handler(kind, _database)
    app.add_exception_handler(Exception, _internal)
