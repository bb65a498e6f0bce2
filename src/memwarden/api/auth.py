"""Who is calling: an API key (``Authorization: Bearer`` or ``X-API-Key``) and its role.

read may read; write may also mutate; admin may also use the admin routes. With no live key
configured the API is open (actor ``api-http``), but only while the server listens on
loopback; ``memwarden serve`` refuses any other address without keys, and a server whose keys
were all revoked while it listens beyond loopback refuses every request.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from memwarden.api.errors import ApiError
from memwarden.api.state import backend_of
from memwarden.audit.actor import acting_as
from memwarden.core.keys import ROLES

OPEN_ACTOR = "api-http"
CHALLENGE = {"WWW-Authenticate": 'Bearer realm="memwarden"'}

bearer_scheme = HTTPBearer(
    auto_error=False, description="An API key: `Authorization: Bearer mwk_…`"
)
header_scheme = APIKeyHeader(name="X-API-Key", auto_error=False, description="An API key")


@dataclass(frozen=True)
class Caller:
    actor: str
    role: str
    key_name: str | None = None

    @contextmanager
    def acting(self) -> Iterator[str]:
        """Attribute every mutation inside the block to this caller."""
        with acting_as(self.actor) as actor:
            yield actor


def require(role: str) -> Callable[..., Caller]:
    """A dependency admitting callers whose key has at least ``role``."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}")

    # A plain def: it reads the database, so FastAPI runs it in the threadpool.
    def dependency(
        request: Request,
        bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
        api_key: Annotated[str | None, Depends(header_scheme)],
    ) -> Caller:
        token = bearer.credentials if bearer is not None else api_key
        backend = backend_of(request)
        mw = backend.get()
        if token:
            result = mw.authenticate(token)
            if result.key is None or not result.ok:
                raise ApiError(401, "unauthorized", result.reason or "unknown API key", CHALLENGE)
            key = result.key
            if not key.allows(role):
                raise ApiError(
                    403,
                    "forbidden",
                    f"the key {key.name!r} has role {key.role}; this route needs {role}",
                )
            return Caller(key.actor, key.role, key.name)
        if mw.keys_configured():
            raise ApiError(
                401,
                "unauthorized",
                "an API key is required: send `Authorization: Bearer <key>` or `X-API-Key: <key>`",
                CHALLENGE,
            )
        if not backend.open_allowed:
            raise ApiError(
                401,
                "unauthorized",
                "no API key is configured and this server listens beyond loopback: create one "
                "with `memwarden key create NAME --role ROLE`",
                CHALLENGE,
            )
        return Caller(OPEN_ACTOR, "admin")

    dependency.__name__ = f"require_{role}"
    return dependency


Reader = Annotated[Caller, Depends(require("read"))]
Writer = Annotated[Caller, Depends(require("write"))]
Admin = Annotated[Caller, Depends(require("admin"))]
