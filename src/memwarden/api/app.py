"""The HTTP API: ``create_app(settings)`` builds one FastAPI app over one memwarden database.

Endpoints are plain ``def`` functions: the library is synchronous, so FastAPI runs them in
its threadpool and the event loop never waits on the database.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import os
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager

import structlog
from fastapi import Depends, FastAPI

import memwarden
from memwarden import web as dashboard
from memwarden.api import openapi
from memwarden.api.limits import DEFAULT_MAX_BODY_BYTES, BodyLimitMiddleware
from memwarden.api.metrics import Metrics, MetricsMiddleware
from memwarden.api.routes import (
    alerts,
    audit,
    documents,
    health,
    integrity,
    interactions,
    memories,
    projects,
    recall,
    state,
)
from memwarden.api.routes import metrics as metrics_route
from memwarden.api.strict_json import DuplicateKeysMiddleware, refuse_repeated_keys
from memwarden.audit.oplog import ViaMiddleware
from memwarden.config import Settings
from memwarden.core.service import Memwarden
from memwarden.nightly import scheduler
from memwarden.observability import logs
from memwarden.serving import errors
from memwarden.serving.leader import Leader
from memwarden.serving.state import Backend

log = structlog.get_logger(__name__)

# Later parts of memwarden (dashboard, alerts, operation log) plug in here: each extension
# gets the app (to add routers) and its Metrics (to add collectors) when an app is built.
Extension = Callable[[FastAPI, Metrics], None]

DESCRIPTION = """An auditable memory core for AI agents. Every change is a ledger entry whose
actor is the API key that made it (`api:<key name>`).

Authenticate with `Authorization: Bearer <key>` or `X-API-Key: <key>`. Roles: **read** may
read; **write** may also change memories, projects, state and documents; **admin** may also
use `/admin/*` and erase. Errors are always `{"error": {"code", "message"}}`."""


def create_app(
    settings: Settings | None = None,
    *,
    memwarden: Memwarden | None = None,
    open_allowed: bool = True,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    extensions: Sequence[Extension] = (),
    leader: Leader | None = None,
) -> FastAPI:
    """An app over ``settings``' database (opened on first use), or over an open ``memwarden``.

    ``open_allowed``: whether the app may serve without keys when none is configured; the
    server passes False when it listens beyond loopback. ``leader``: one of several worker
    processes (``serve --workers``): the scheduler's jobs and the start-up vector sweep run
    only in the worker that holds it."""
    if memwarden is not None:
        settings = memwarden.settings
    settings = settings or Settings()
    backend = Backend(settings, memwarden, open_allowed=open_allowed)
    metrics = Metrics()
    backend.on_open.append(metrics.watch)
    # The server loads the embedder and writes any missing or stale vector in the background.
    # With several workers only the leader sweeps: N processes embedding the same rows at once
    # would cost N times the CPU for one result.
    backend.on_open.append(
        lambda mw: mw.start_index_sweep() if leader is None or leader.held() else None
    )
    # The nightly run (MEMWARDEN_NIGHTLY_CRON, checked here: a bad line fails at start) and the
    # hourly operation log sweep run from the server's own scheduler while the app is up.
    gate = leader.held if leader is not None else None
    new_schedule = functools.partial(scheduler.server_schedule, settings, backend.get, gate=gate)
    schedule = new_schedule()

    @asynccontextmanager
    async def lifespan(running: FastAPI) -> AsyncIterator[None]:
        backend.start()
        if running.state.schedule_spent:
            # A scheduler once shut down never runs its jobs again (APScheduler only logs an
            # error for each): a lifespan that runs again (a test client entered twice) gets
            # a new one.
            running.state.schedule = new_schedule()
            running.state.schedule_spent = False
        schedule = running.state.schedule
        if leader is not None:
            # A worker opens its store before it reports started: its first requests do not
            # pay for the open (the supervisor's "started" then means ready). A store that is
            # down stays the lazy case: /health says 503 until it is back.
            try:
                await asyncio.to_thread(backend.get)
            except Exception as exc:  # noqa: BLE001 - opened again on the first request
                log.error("serve_worker_open_failed", error=str(exc).splitlines()[0])
        if schedule is not None:
            schedule.start()
        try:
            yield
        finally:
            if schedule is not None:
                scheduler.stop(schedule)
                running.state.schedule_spent = True
            backend.close()
            if leader is not None:
                leader.release()

    app = FastAPI(
        title="memwarden",
        version=memwarden_version(),
        description=DESCRIPTION,
        lifespan=lifespan,
        dependencies=[Depends(errors.check_parameters), Depends(refuse_repeated_keys)],
    )
    app.state.backend = backend
    app.state.metrics = metrics
    app.state.settings = settings
    app.state.schedule = schedule
    app.state.schedule_spent = False
    errors.install(app)
    openapi.install(app)  # integer bounds stated exactly
    for module in (
        memories,
        audit,
        projects,
        state,
        documents,
        interactions,
        recall,
        integrity,
        alerts,
        health,
        metrics_route,
    ):
        app.include_router(module.router)
    dashboard.install(app)  # /dashboard pages and GET /admin/dashboard
    for extension in extensions:
        extension(app, metrics)
    # Added last = outermost: the metrics see every request, even one refused for its size;
    # the repeated-key check reads a body the limit has already bounded.
    app.add_middleware(DuplicateKeysMiddleware)
    app.add_middleware(BodyLimitMiddleware, max_bytes=max_body_bytes)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    app.add_middleware(ViaMiddleware, transport="http")  # operations log as transport http
    if memwarden is not None:
        backend.get()  # hook the metrics onto the instance we were given
    return app


# ``serve --workers N``: the options each worker process builds its app with (JSON), set by
# the parent in the environment its workers inherit; settings come from MEMWARDEN_* as usual.
WORKER_OPTIONS_ENV = "MEMWARDEN_SERVE_WORKER_OPTIONS"


def worker_app() -> FastAPI:
    """The app of one ``serve --workers`` process (uvicorn's factory: a worker is a fresh
    interpreter, so it is built from the environment, not handed over)."""
    options = json.loads(os.environ.get(WORKER_OPTIONS_ENV, "{}"))
    # As ``serve`` logs with one worker: INFO unless MEMWARDEN_LOG_LEVEL says otherwise (the
    # variable, checked by the supervisor already, is inherited).
    logs.configure(logs.level_from_env(logging.INFO), logs.format_from_env())
    settings = Settings()
    return create_app(
        settings,
        open_allowed=bool(options.get("open_allowed", False)),
        max_body_bytes=int(options.get("max_body_bytes", DEFAULT_MAX_BODY_BYTES)),
        leader=Leader(settings.data_home),
    )


def memwarden_version() -> str:
    return str(getattr(memwarden, "__version__", "0"))
