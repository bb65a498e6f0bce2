"""`memwarden serve`: the HTTP API under uvicorn."""

from __future__ import annotations

import json
import os
import signal
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Annotated

import typer

from memwarden.cli.common import fail, guard, load_settings, say, warn_if_unverified
from memwarden.config import Settings
from memwarden.core.service import Memwarden

DEFAULT_PORT = 8100
DEFAULT_MAX_BODY_BYTES = 1024 * 1024  # memwarden.api.limits.DEFAULT_MAX_BODY_BYTES
MAX_WORKERS = 64
# uvicorn replaces a worker that has not answered its supervisor's ping within this many
# seconds. Its default (5 s) is shorter than a worker's start on a busy machine (a fresh
# interpreter importing the web stack and memwarden): workers were killed while starting,
# over and over. A worker that is really hung is still replaced, a minute later.
WORKER_HEALTHCHECK_SECONDS = 60


def url_of(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def serve(
    ctx: typer.Context,
    host: Annotated[
        str, typer.Option("--host", help="Address to listen on; beyond loopback needs API keys.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="TCP port.")] = DEFAULT_PORT,
    max_body_bytes: Annotated[
        int, typer.Option("--max-body-bytes", min=1, help="Largest request body accepted.")
    ] = DEFAULT_MAX_BODY_BYTES,
    access_log: Annotated[bool, typer.Option("--access-log/--no-access-log")] = True,
    workers: Annotated[
        int,
        typer.Option(
            "--workers",
            min=1,
            max=MAX_WORKERS,
            help="Server processes sharing the port (more than 1 needs PostgreSQL).",
        ),
    ] = 1,
) -> None:
    """Serve the HTTP API (OpenAPI docs at /docs) until SIGINT or SIGTERM."""
    # Imported here: the web stack is heavy and every other command does without it.
    import uvicorn

    from memwarden.api.app import create_app
    from memwarden.serving.auth import is_loopback

    loopback = is_loopback(host)
    with guard():
        settings = load_settings(ctx)
    if workers > 1 and not _is_postgres(settings):
        fail(
            f"--workers {workers} needs PostgreSQL (MEMWARDEN_DATABASE_URL=postgresql+psycopg://"
            "...): a SQLite file takes one writer at a time, so more processes only queue on "
            "its lock; serve SQLite with one worker"
        )
    if workers > 1:
        with guard():
            mw = Memwarden(settings)
        try:
            mode = _checked_mode(mw, host, loopback)
        finally:
            mw.close()  # the supervisor serves nothing: each worker opens the store itself
        _serve_workers(
            settings,
            host,
            port,
            workers,
            f"{mode}; {workers} workers",
            max_body_bytes,
            loopback=loopback,
            access_log=access_log,
        )
        return
    with guard():
        mw = Memwarden(settings)
    try:
        mode = _checked_mode(mw, host, loopback)
        with guard():  # a malformed MEMWARDEN_NIGHTLY_CRON stops the server here, clearly
            app = create_app(memwarden=mw, open_allowed=loopback, max_body_bytes=max_body_bytes)
        listener = _listen(host, port)
        say(f"memwarden API on {url_of(host, port)}  ({mode}; docs at {url_of(host, port)}/docs)")
        say(f"dashboard at {url_of(host, port)}/dashboard/")
        if app.state.schedule is not None:
            for job in app.state.schedule.get_jobs():
                say(f"scheduled: {job.name} ({job.trigger})")
        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            access_log=access_log,
            log_level="info",
            timeout_graceful_shutdown=10,
        )
        with _graceful_signals() as received, listener:
            uvicorn.Server(config).run(sockets=[listener])
        if received:
            say(f"memwarden API stopped ({signal.Signals(received[-1]).name})")
    finally:
        mw.close()


def _checked_mode(mw: Memwarden, host: str, loopback: bool) -> str:
    """How the server will admit callers; refuses to listen beyond loopback without keys."""
    with guard():
        warn_if_unverified(mw)
        keys = mw.list_keys(include_revoked=False)
    if not keys and not loopback:
        fail(
            f"refusing to listen on {host} without API keys: anyone who can reach it could "
            "read and change every memory. Create a key first (`memwarden key create NAME "
            "--role admin`) or listen on 127.0.0.1"
        )
    return f"{len(keys)} API key(s)" if keys else "open: no API keys, loopback only"


def _is_postgres(settings: Settings) -> bool:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(settings.resolved_database_url).get_backend_name() == "postgresql"
    except ArgumentError:
        return False  # not a URL at all: opening the store says so, clearly


def _serve_workers(
    settings: Settings,
    host: str,
    port: int,
    workers: int,
    mode: str,
    max_body_bytes: int,
    *,
    loopback: bool,
    access_log: bool,
) -> None:
    """``workers`` uvicorn processes on one listening socket, under uvicorn's supervisor
    (it restarts a worker that dies). Each worker builds its app from the environment
    (``api.app.worker_app``); the one that holds the leader lock runs the scheduler's jobs."""
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    from memwarden.api.app import WORKER_OPTIONS_ENV
    from memwarden.nightly import scheduler

    with guard():  # a malformed MEMWARDEN_NIGHTLY_CRON stops the server here, clearly
        schedule = scheduler.server_schedule(settings, lambda: Memwarden(settings))
    # Workers are fresh interpreters: the command line's --home / --database-url reach them
    # through the environment they inherit.
    os.environ["MEMWARDEN_HOME"] = str(settings.home)
    if settings.database_url is not None:
        os.environ["MEMWARDEN_DATABASE_URL"] = settings.database_url
    os.environ[WORKER_OPTIONS_ENV] = json.dumps(
        {"open_allowed": loopback, "max_body_bytes": max_body_bytes}
    )
    listener = _listen(host, port)
    say(f"memwarden API on {url_of(host, port)}  ({mode}; docs at {url_of(host, port)}/docs)")
    say(f"dashboard at {url_of(host, port)}/dashboard/")
    if schedule is not None:
        for job in schedule.get_jobs():
            say(f"scheduled (in one worker): {job.name} ({job.trigger})")
    config = uvicorn.Config(
        "memwarden.api.app:worker_app",
        factory=True,
        workers=workers,
        host=host,
        port=port,
        access_log=access_log,
        log_level="info",
        timeout_graceful_shutdown=10,
        timeout_worker_healthcheck=WORKER_HEALTHCHECK_SECONDS,
    )
    with _graceful_signals(), listener:
        # The supervisor takes SIGINT/SIGTERM itself and stops every worker gracefully.
        Multiprocess(config, sockets=[listener]).run()
    say("memwarden API stopped")


def _listen(host: str, port: int) -> socket.socket:
    """Bind here, not in uvicorn, so a port in use is one clear error line and exit 1."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        listener = socket.socket(family, kind, proto)
    except OSError as exc:
        fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}")
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(address)
        listener.listen(2048)
    except OSError as exc:
        listener.close()
        fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}")
    listener.set_inheritable(True)
    return listener


@contextmanager
def _graceful_signals() -> Iterator[list[int]]:
    """uvicorn shuts down gracefully on SIGINT/SIGTERM, then re-raises the signal to the
    handler it found. Found here: the signal is noted and the command ends with exit 0
    (after closing the database) instead of dying by the signal."""
    received: list[int] = []

    def note(signum: int, _frame: FrameType | None) -> None:
        received.append(signum)

    previous = {sig: signal.signal(sig, note) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield received
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def serve_mcp(ctx: typer.Context) -> None:
    """Serve memwarden as MCP tools on stdin/stdout (for agents; actor mcp:<client name>)."""
    from memwarden.mcp import serve_stdio

    with guard():
        serve_stdio(load_settings(ctx))
