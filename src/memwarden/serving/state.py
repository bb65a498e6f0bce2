"""The app's hold on its database: opened on first use, so the API can start (and report a
503 on /health) while the database is down, and recover when it comes back."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Annotated, Any, cast

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from memwarden.config import Settings
from memwarden.core.service import Memwarden
from memwarden.errors import ClosedError

OpenHook = Callable[[Memwarden], None]


class Backend:
    def __init__(
        self,
        settings: Settings,
        memwarden: Memwarden | None = None,
        *,
        open_allowed: bool = True,
    ) -> None:
        self.settings = settings
        self.open_allowed = open_allowed  # may run without keys (bound to loopback only)
        self.on_open: list[OpenHook] = []
        self._owned = memwarden is None
        self._mw = memwarden
        self._lock = threading.Lock()
        self._hooked = False
        # Set by ``close`` (the app's shutdown), cleared by ``start`` (its start-up): a
        # scheduled job still running at shutdown must not open a memwarden nobody closes.
        self._stopped = False

    def start(self) -> None:
        """The app starts (again: a test client's lifespan may run more than once)."""
        with self._lock:
            self._stopped = False

    def get(self) -> Memwarden:
        """The open Memwarden; opens it on first use (raising StorageError and the like).
        After ``close`` (until ``start``) nothing is opened: ClosedError, or the memwarden the
        app was given (whose calls are then refused once its owner closed it)."""
        mw = self._mw
        if mw is not None and self._hooked:
            return mw
        with self._lock:
            if self._stopped:
                raise ClosedError()
            if self._mw is None:
                self._mw = Memwarden(self.settings)
            if not self._hooked:
                for hook in self.on_open:
                    hook(self._mw)
                self._hooked = True
            return self._mw

    def ready(self) -> Memwarden | None:
        """The open Memwarden when it is open and hooked (no lock, no I/O); else None."""
        mw = self._mw
        return mw if mw is not None and self._hooked else None

    @property
    def opened(self) -> Memwarden | None:
        return self._mw

    def close(self) -> None:
        with self._lock:
            self._stopped = True
            if self._mw is not None and self._owned:
                self._mw.close()
                self._mw = None
                self._hooked = False


def backend_of(request: Request) -> Backend:
    backend: Backend = request.app.state.backend
    return backend


class _AsCaller:
    """The Memwarden of a request, every method called as the request's caller (its actor and
    its key's scopes), whatever route calls it: the domain enforces the scopes."""

    def __init__(self, mw: Memwarden, request: Request) -> None:
        self._mw = mw
        self._request = request

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._mw, name)
        caller = getattr(self._request.state, "caller", None)
        if caller is None or not callable(value):
            return value

        @functools.wraps(value)
        def call(*args: Any, **kwargs: Any) -> Any:
            with caller.acting():
                return value(*args, **kwargs)

        return call


async def memwarden(request: Request) -> Memwarden:
    """The request's Memwarden. Once open, handed over on the event loop: a plain ``def``
    would cost every request one more trip through the threadpool (a thread hand-off and a
    GIL switch or two) for an attribute read. Opening touches the database, so the first
    use (or a retry after the database was down) runs in the threadpool."""
    backend = backend_of(request)
    mw = backend.ready()
    if mw is None:
        mw = await run_in_threadpool(backend.get)
    return cast(Memwarden, _AsCaller(mw, request))


MW = Annotated[Memwarden, Depends(memwarden)]
