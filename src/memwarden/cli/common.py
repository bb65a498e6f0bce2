"""What every command shares: settings, opening the database, errors, output and progress.

Exit codes: 0 success, 1 a domain error (not found, illegal transition, invalid input,
conflict, storage, schema or ledger trouble), 2 a usage error (typer's own) or a ledger key
that is not the store's (the setup is wrong, not the request). An error is one
line on stderr; the traceback only with ``MEMWARDEN_DEBUG=1``.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, is_dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, Any, NoReturn

import structlog
import typer
from pydantic import ValidationError
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from memwarden.audit.actor import acting_as, cli_actor
from memwarden.audit.oplog import unknown_actions_message, via
from memwarden.config import Settings
from memwarden.core.service import Memwarden
from memwarden.errors import InvalidInputError, LedgerKeyMismatchError, MemwardenError
from memwarden.observability import logs

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON on stdout instead of text.")]
NoteOpt = Annotated[
    str | None, typer.Option("--note", help="Why: kept with the change in the audit ledger.")
]

_TRUE = {"1", "true", "yes", "on"}


@dataclass
class GlobalOptions:
    """The options given before the command (``memwarden --home DIR ...``)."""

    home: Path | None = None
    database_url: str | None = None


def debug_enabled() -> bool:
    # Read straight from the environment: it must work even when the settings cannot be built.
    return os.environ.get("MEMWARDEN_DEBUG", "").strip().lower() in _TRUE


# -- errors -----------------------------------------------------------------------------------
def one_line(message: str) -> str:
    return " ".join(message.split())


def warn(message: str) -> None:
    typer.echo(f"warning: {one_line(message)}", err=True)


def fail(message: str, exc: BaseException | None = None) -> NoReturn:
    """One clear line on stderr and exit 1 (the traceback too with MEMWARDEN_DEBUG=1)."""
    if exc is not None and debug_enabled():
        traceback.print_exception(exc, file=sys.stderr)
    typer.echo(f"error: {one_line(message)}", err=True)
    raise typer.Exit(1)


def _settings_message(exc: ValidationError) -> str:
    first = exc.errors()[0]
    name = ".".join(str(part) for part in first.get("loc", ())) or "settings"
    env = f"MEMWARDEN_{name.upper()}"
    return f"invalid setting {env}: {first.get('msg', 'invalid value')}"


def _sql_message(exc: SQLAlchemyError) -> str:
    original = getattr(exc, "orig", None)
    text = str(original if original is not None else exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


@contextmanager
def guard() -> Iterator[None]:
    """Turn every failure inside the block into exit 1 and one line on stderr."""
    try:
        yield
    except (typer.Exit, typer.Abort, typer.TyperException, KeyboardInterrupt):
        raise  # typer's own exits and usage errors (exit 2) pass through untouched
    except LedgerKeyMismatchError as exc:
        # Exit 2: the installation is set up wrong (another machine's key); retrying the
        # same command cannot succeed until the key is put back.
        if debug_enabled():
            traceback.print_exception(exc, file=sys.stderr)
        typer.echo(f"error: {one_line(str(exc))}", err=True)
        raise typer.Exit(2) from None
    except MemwardenError as exc:
        fail(str(exc), exc)
    except ValidationError as exc:
        fail(_settings_message(exc), exc)
    except ArgumentError as exc:
        fail(f"invalid database URL: {exc}", exc)
    except SQLAlchemyError as exc:
        fail(f"database error: {_sql_message(exc)}", exc)
    except OSError as exc:
        where = f": {exc.filename}" if exc.filename else ""
        fail(f"{exc.strerror or exc}{where}", exc)
    except UnicodeEncodeError as exc:
        # An argument with bytes that are not UTF-8 (kept by Python as lone surrogates).
        fail("an argument is not valid UTF-8 text: check its encoding", exc)
    except RecursionError as exc:
        fail("the input is nested too deeply (JSON nested past Python's parser)", exc)
    except Exception as exc:  # noqa: BLE001 - the CLI's promise: never a bare traceback
        fail(f"unexpected {type(exc).__name__}: {exc} (MEMWARDEN_DEBUG=1 shows the traceback)", exc)


# -- settings and the database ----------------------------------------------------------------
def load_settings(ctx: typer.Context) -> Settings:
    """Settings from the environment, with ``--home`` and ``--database-url`` on top."""
    options = ctx.find_root().obj
    overrides: dict[str, Any] = {}
    if isinstance(options, GlobalOptions):
        if options.home is not None:
            overrides["home"] = options.home
        if options.database_url is not None:
            overrides["database_url"] = options.database_url
    return Settings(**overrides)


def safe_url(url: str) -> str:
    """The database URL with any password masked."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url


@contextmanager
def session(
    ctx: typer.Context,
    *,
    quick_check: bool = True,
    require_witness: bool = True,
    initialise: bool = False,
    overrides: dict[str, Any] | None = None,
    drain: float = 10.0,
) -> Iterator[Memwarden]:
    """Open the configured database for one command, acting as ``cli:<os user>``.

    ``initialise`` creates or upgrades it first (what ``memwarden init`` does); ``overrides``
    are settings the command's own options set; ``drain`` is how long (at most) the end of
    the command waits for the webhook deliveries it caused."""
    with guard():
        settings = load_settings(ctx)
        if overrides:
            settings = settings.model_copy(update=overrides)
        if initialise:
            mw = Memwarden.init(settings)
        else:
            mw = Memwarden(settings, quick_check=quick_check, require_witness=require_witness)
        try:
            warn_if_unverified(mw)
            with acting_as(cli_actor()), via("cli"):
                yield mw
        finally:
            mw.alerts.drain(drain)  # deliver the alerts this command raised (bounded; never raises)
            mw.close()


def warn_if_unverified(mw: Memwarden) -> None:
    """On stderr, before the command's work: a ledger whose newest rows fail the check on
    open, and settings that quietly do nothing (allowlisted operation-log actions that no
    operation has, a typo such as ``recal``)."""
    if mw.oplog.unknown_actions:
        warn(unknown_actions_message(mw.oplog.unknown_actions))
    report = mw.open_check
    if report is not None and not report.ok:
        warn(
            f"the ledger's newest rows fail verification ({report.reason}): "
            "run `memwarden audit verify`"
        )


# -- parsing ----------------------------------------------------------------------------------
def parse_time(text: str, what: str = "time") -> datetime:
    """ISO-8601; a time without a zone is UTC. Malformed -> a domain error (exit 1)."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InvalidInputError(
            f"malformed {what} {text!r}: expected ISO-8601, e.g. 2025-05-01T12:00:00Z"
        ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


# -- output -----------------------------------------------------------------------------------
def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if hasattr(value, "to_dict"):
        return value.to_dict()
    if is_dataclass(value) and not isinstance(value, type):
        return asdict(value)
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, set | frozenset):
        return sorted(value)
    return str(value)


def emit_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False, default=_jsonable))


def console() -> Console:
    """A console on the current stdout (tests swap it), wide enough for tables when piped."""
    if sys.stdout.isatty():
        return Console(highlight=False)
    return Console(highlight=False, width=int(os.environ.get("COLUMNS", "120")))


def say(text: str) -> None:
    """A plain line on stdout: no markup, no highlighting."""
    typer.echo(text)


def show_progress(json_out: bool) -> bool:
    return not json_out and sys.stdout.isatty()


@contextmanager
def progress_bar(
    enabled: bool, description: str, total: int | None
) -> Iterator[Callable[[int], None] | None]:
    """A rich progress bar on a terminal; ``None`` (no bar) otherwise."""
    if not enabled:
        yield None
        return
    columns = (
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console(), transient=True) as bar:
        task = bar.add_task(description, total=total)
        yield lambda done: bar.update(task, completed=done)


# -- logging ---------------------------------------------------------------------------------
def configure_logging(ctx: typer.Context) -> None:
    """For this invocation: the log on stderr at ``MEMWARDEN_LOG_LEVEL`` (``serve``: INFO by
    default; other commands: ERROR, or DEBUG with MEMWARDEN_DEBUG=1), alerts always, as
    console or JSON lines (``MEMWARDEN_LOG_FORMAT``).

    The previous configuration comes back when the command ends, so in-process callers
    (tests, an embedding program) are left as they were."""
    previous = structlog.get_config()
    serving = ctx.invoked_subcommand == "serve"
    default = logging.INFO if serving else logging.ERROR
    if debug_enabled():
        default = logging.DEBUG
    try:
        level, fmt = logs.level_from_env(default), logs.format_from_env()
    except logs.LogSettingError as exc:
        fail(str(exc))
    logs.configure(level, fmt)
    ctx.call_on_close(lambda: structlog.configure(**previous))
