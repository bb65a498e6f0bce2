"""JSON bodies that give a key twice are refused, not read with the last one winning.

Python's ``json`` (and so FastAPI) keeps the last of two equal keys: ``{"content": "a",
"content": "b"}`` stored "b", and ``{"metadata": {"team": "x", "team": "y"}}`` one team, with
no word, while a proxy, a log or a client library that reads the first saw another request
than the one memwarden stored. The body, already bounded by ``BodyLimitMiddleware``, is read
here once and checked (``DuplicateKeysMiddleware``); the key found is kept in the request's
scope, and the app's dependency ``refuse_repeated_keys`` refuses the request with a 422
``malformed_json`` naming it once a route matched: an unknown path is still a 404, a wrong
method a 405, and the metrics keep the route's name. A body that is not JSON at all is left to
FastAPI's own error.
"""

from __future__ import annotations

import json

from fastapi import Request
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from memwarden.core.metadata import RepeatedKeyError, unique_keys
from memwarden.serving.errors import ApiError

_WITH_BODY = frozenset({"POST", "PUT", "PATCH", "DELETE"})
SCOPE_KEY = "memwarden.repeated_json_key"
SHOWN_CHARS = 80  # of the key, in the error: not the whole of what was sent


def repeated_key(body: bytes) -> str | None:
    """The first key some object of ``body`` gives twice; None when none does, or when the
    body is not JSON (FastAPI says so itself)."""
    try:
        json.loads(body, object_pairs_hook=unique_keys)
    except RepeatedKeyError as found:
        return found.key
    except (ValueError, RecursionError):
        return None
    return None


def _is_json(scope: Scope) -> bool:
    if scope.get("method") not in _WITH_BODY:
        return False
    kind = Headers(scope=scope).get("content-type")
    if kind is None:
        return True  # stricter than FastAPI needs: some versions read such a body as JSON
    essence = kind.split(";", 1)[0].strip().lower()
    return essence == "application/json" or (
        essence.startswith("application/") and essence.endswith("+json")
    )


class DuplicateKeysMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _is_json(scope):
            await self.app(scope, receive, send)
            return
        messages: list[Message] = []
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request" or not message.get("more_body", False):
                break
        body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.request")
        key = repeated_key(body)
        if key is not None:
            scope[SCOPE_KEY] = key

        async def replay() -> Message:
            if messages:
                return messages.pop(0)
            return await receive()

        await self.app(scope, replay, send)


def refuse_repeated_keys(request: Request) -> None:
    """The app's dependency: a body ``DuplicateKeysMiddleware`` found a repeated key in is
    refused, before the route's body is validated or its handler runs."""
    key = request.scope.get(SCOPE_KEY)
    if key is None:
        return
    shown = key if len(key) <= SHOWN_CHARS else key[: SHOWN_CHARS - 1] + "…"
    raise ApiError(
        422,
        "malformed_json",
        f"the JSON body gives the key {shown!r} more than once in one object: say it once",
    )
