"""Which transport an operation arrived by: a context variable, like the actor."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from memwarden.audit.oplog.entry import DEFAULT_TRANSPORT, TRANSPORTS
from memwarden.errors import InvalidInputError

_current_transport: ContextVar[str] = ContextVar("memwarden_transport", default=DEFAULT_TRANSPORT)


def current_transport() -> str:
    return _current_transport.get()


@contextmanager
def via(transport: str) -> Iterator[str]:
    """Every operation inside the block arrived by ``transport`` (http, cli, mcp, ...)."""
    if transport not in TRANSPORTS:
        raise InvalidInputError(f"unknown transport {transport!r}: one of {', '.join(TRANSPORTS)}")
    token = _current_transport.set(transport)
    try:
        yield transport
    finally:
        _current_transport.reset(token)


class ViaMiddleware:
    """An ASGI middleware: every request the wrapped app serves arrives by ``transport``.

    Context variables set here reach the endpoints, threadpool ones included (the worker
    threads run in a copy of the request's context)."""

    def __init__(self, app: Callable[..., Awaitable[None]], transport: str = "http") -> None:
        if transport not in TRANSPORTS:
            raise InvalidInputError(f"unknown transport {transport!r}")
        self.app = app
        self.transport = transport

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        token = _current_transport.set(self.transport)
        try:
            await self.app(scope, receive, send)
        finally:
            _current_transport.reset(token)
