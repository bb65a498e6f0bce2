"""`memwarden oplog ...`: the operation log — recent operations, per-action timings, retention."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from memwarden.audit.oplog import TRANSPORTS, ActionStats, LoggedOperation
from memwarden.cli.common import JsonFlag, console, emit_json, parse_time, say, session
from memwarden.errors import InvalidInputError

app = typer.Typer(
    help="The operation log: what was asked, by which transport, and how long it took.",
    no_args_is_help=True,
)

SinceOpt = Annotated[
    str | None,
    typer.Option(
        "--since", help="Only operations since then: ISO-8601, or an age like 30m, 6h, 7d."
    ),
]
_AGE = re.compile(r"^\s*(\d+)\s*([smhd])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
OFF_HINT = (
    "the operation log is off: set MEMWARDEN_OPLOG_ACTIONS to a comma list of actions "
    "(e.g. recall,context,remember) or * for all"
)


def parse_since(text: str | None, now: datetime | None = None) -> datetime | None:
    if text is None:
        return None
    age = _AGE.match(text)
    if age:
        amount, unit = int(age.group(1)), _UNITS[age.group(2)]
        return (now or datetime.now(UTC)) - timedelta(**{unit: amount})
    return parse_time(text, "--since")


def _print(columns: tuple[str, ...], rows: list[tuple[object, ...]]) -> None:
    table = Table(show_lines=False)
    for name in columns:
        table.add_column(name, overflow="fold")
    for row in rows:
        table.add_row(*(Text("-" if cell is None else str(cell)) for cell in row))
    console().print(table)


@app.command("list")
def list_operations(
    ctx: typer.Context,
    action: Annotated[str | None, typer.Option("--action", help="Only this action.")] = None,
    transport: Annotated[
        str | None,
        typer.Option("--transport", help=f"Only this transport ({', '.join(TRANSPORTS)})."),
    ] = None,
    project: Annotated[
        str | None, typer.Option("--project", "-p", help="Only this project.")
    ] = None,
    since: SinceOpt = None,
    limit: Annotated[int, typer.Option("--limit", help="At most this many (1-1000).")] = 50,
    json_out: JsonFlag = False,
) -> None:
    """The most recent operations, newest first."""
    with session(ctx) as mw:
        if transport is not None and transport not in TRANSPORTS:
            raise InvalidInputError(
                f"unknown transport {transport!r}: one of {', '.join(TRANSPORTS)}"
            )
        items = mw.oplog.recent(
            action=action,
            transport=transport,
            project=project,
            since=parse_since(since),
            limit=limit,
        )
        enabled = mw.oplog.enabled
    if json_out:
        emit_json([item.to_dict() for item in items])
        return
    if not items:
        say("no operations logged" if enabled else f"no operations logged ({OFF_HINT})")
        return
    _print(
        ("started", "action", "transport", "project", "actor", "ms", "error"),
        [_row(i) for i in items],
    )


def _row(item: LoggedOperation) -> tuple[object, ...]:
    started = item.started_at.isoformat(timespec="milliseconds")
    return (
        started,
        item.action,
        item.transport,
        item.project,
        item.actor,
        f"{item.duration_ms:.3f}",
        item.error,
    )


@app.command("stats")
def stats(ctx: typer.Context, since: SinceOpt = None, json_out: JsonFlag = False) -> None:
    """Per action: how many, how many failed, and the p50 / p95 / max duration in ms."""
    with session(ctx) as mw:
        items = mw.oplog.stats(since=parse_since(since))
        enabled = mw.oplog.enabled
    if json_out:
        emit_json([item.to_dict() for item in items])
        return
    if not items:
        say("no operations logged" if enabled else f"no operations logged ({OFF_HINT})")
        return
    _print(("action", "count", "errors", "p50 ms", "p95 ms", "max ms"), [_stat(i) for i in items])


def _stat(item: ActionStats) -> tuple[object, ...]:
    return (
        item.action,
        item.count,
        item.errors,
        f"{item.p50_ms:.3f}",
        f"{item.p95_ms:.3f}",
        f"{item.max_ms:.3f}",
    )


@app.command("sweep")
def sweep(
    ctx: typer.Context,
    days: Annotated[
        int | None,
        typer.Option(
            "--days",
            min=0,
            help="Delete rows older than this (default MEMWARDEN_OPLOG_RETENTION_DAYS).",
        ),
    ] = None,
    json_out: JsonFlag = False,
) -> None:
    """Run the retention sweep now: rows older than the retention delete in batches of 5,000."""
    with session(ctx) as mw:
        result = mw.oplog.sweep(days)
    if result is None:
        message = "retention is off (MEMWARDEN_OPLOG_RETENTION_DAYS=-1): nothing swept"
        if json_out:
            emit_json({"deleted": 0, "batches": 0, "cutoff": None, "off": True})
        else:
            say(message)
        return
    if json_out:
        emit_json(result.to_dict())
    else:
        say(
            f"deleted {result.deleted} operation rows older than "
            f"{result.cutoff.isoformat(timespec='seconds')} in {len(result.batches)} batches"
        )
