"""Who is calling: an API key (``Authorization: Bearer`` or ``X-API-Key``) and its role.

read may read; write may also mutate; admin may also use the admin routes. With no live key
configured the API is open (actor ``api-http``), but only while the server listens on
loopback and only to requests addressed to a loopback host name; ``memwarden serve`` refuses any other address without keys, and a server whose keys
were all revoked while it listens beyond loopback refuses every request.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from memwarden.audit.actor import acting_as
from memwarden.core.keys import ROLES
from memwarden.core.provenance import AGENT, Principal, Scopes, acting_for
from memwarden.serving.errors import ApiError
from memwarden.serving.state import backend_of

OPEN_ACTOR = "api-http"
CHALLENGE = {"WWW-Authenticate": 'Bearer realm="memwarden"'}

bearer_scheme = HTTPBearer(
    auto_error=False, description="An API key: `Authorization: Bearer mwk_…`"
)
header_scheme = APIKeyHeader(name="X-API-Key", auto_error=False, description="An API key")


# An open server (no keys, loopback only) is used by local agents: an agent with every scope.
OPEN_PRINCIPAL = Principal(AGENT, None, Scopes.everything())


@dataclass(frozen=True)
class Caller:
    actor: str
    role: str
    key_name: str | None = None
    principal: Principal = OPEN_PRINCIPAL

    @property
    def is_admin(self) -> bool:
        """An admin is shown a tampered row, flagged; anyone else is refused it."""
        return ROLES.index(self.role) >= ROLES.index("admin") if self.role in ROLES else False

    @contextmanager
    def acting(self) -> Iterator[str]:
        """Attribute every mutation inside the block to this caller, held to its scopes."""
        with acting_as(self.actor) as actor, acting_for(self.principal):
            yield actor


def is_loopback(host: str) -> bool:
    """Whether a host name or address (``[::1]`` brackets allowed) is this machine's loopback."""
    host = host.strip().strip("[]").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# RFC 9110 Host = uri-host [ ":" port ]: a bracketed IPv6 literal or a name of letters,
# digits, '-', '.', and nothing else (no userinfo '@', no '#', '/', '?' or '\\').
_HOST = re.compile(r"^(?:\[(?P<ip6>[0-9A-Fa-f:.]+)\]|(?P<name>[A-Za-z0-9.-]+))(?::[0-9]{1,5})?$")


def host_of(header: str | None) -> str | None:
    """The host a Host header names, or None when it is not a well-formed Host header."""
    if not header:
        return None
    found = _HOST.match(header.strip())
    if found is None:
        return None
    return found.group("ip6") or found.group("name")


def loopback_host(request: Request) -> bool:
    """Whether the request names a loopback host. An open server (no keys) checks it: a page
    of another site whose name was re-pointed at 127.0.0.1 (DNS rebinding) names its own.
    The Host header itself is parsed: a URL parser would read ``evil.example@localhost`` or
    ``localhost#.evil.example`` as localhost."""
    host = host_of(request.headers.get("host"))
    return host is not None and is_loopback(host)


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
            caller = Caller(key.actor, key.role, key.name, key.principal())
            request.state.caller = caller
            return caller
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
        if not loopback_host(request):
            raise ApiError(
                403,
                "forbidden",
                "this server has no API keys and answers only requests addressed to a loopback "
                "host (127.0.0.1, ::1, localhost)",
            )
        caller = Caller(OPEN_ACTOR, "admin")
        request.state.caller = caller
        return caller

    dependency.__name__ = f"require_{role}"
    return dependency


Reader = Annotated[Caller, Depends(require("read"))]
Writer = Annotated[Caller, Depends(require("write"))]
Admin = Annotated[Caller, Depends(require("admin"))]
