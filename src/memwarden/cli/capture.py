"""`memwarden capture`: store an agent exchange, or many from JSON lines (a file or stdin)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from memwarden.cli.common import JsonFlag, emit_json, fail, say, session, warn
from memwarden.core.capture import ImportReport

MAX_REPORTED_LINES = 50


def capture(
    ctx: typer.Context,
    project: Annotated[
        str | None,
        typer.Option("--project", "-p", help="The project (with --jsonl: for lines without one)."),
    ] = None,
    prompt: Annotated[str | None, typer.Option("--prompt", help="What the user asked.")] = None,
    response: Annotated[
        str | None, typer.Option("--response", help="What the agent answered.")
    ] = None,
    client: Annotated[
        str, typer.Option("--client", help="The agent or tool that had the exchange.")
    ] = "",
    jsonl: Annotated[
        str | None,
        typer.Option(
            "--jsonl",
            help='A JSON-lines file, or - for stdin: {"project", "prompt", "response", '
            '"client"?, "time"?} per line.',
        ),
    ] = None,
    json_out: JsonFlag = False,
) -> None:
    """Capture one interaction, or import many from JSON lines.

    A bad line is reported with its number on stderr and skipped; the good lines are kept
    (exit 1 when any line was bad)."""
    if jsonl is not None:
        if prompt is not None or response is not None:
            raise typer.BadParameter("give --jsonl, or --prompt and --response, not both")
        _import(ctx, jsonl, project, json_out)
        return
    if project is None or prompt is None or response is None:
        raise typer.BadParameter("give --project, --prompt and --response (or --jsonl FILE|-)")
    with session(ctx) as mw:
        interaction = mw.capture(project, prompt, response, client)
    if json_out:
        emit_json(interaction.to_dict())
    else:
        say(f"captured interaction {interaction.id} in {interaction.project}")


def _import(ctx: typer.Context, source: str, project: str | None, json_out: bool) -> None:
    with session(ctx) as mw:
        if source == "-":
            report = mw.capture_lines(sys.stdin.buffer, project)
        else:
            with Path(source).open("rb") as handle:
                report = mw.capture_lines(handle, project)
    for error in report.errors[:MAX_REPORTED_LINES]:
        warn(f"line {error.line}: {error.message}")
    if len(report.errors) > MAX_REPORTED_LINES:
        warn(f"... and {len(report.errors) - MAX_REPORTED_LINES} more bad lines")
    if json_out:
        emit_json(report.to_dict())
    else:
        say(summary(report))
    if report.errors:
        fail(
            f"{len(report.errors)} bad line(s) skipped; the {len(report.captured)} good ones were kept"
        )


def summary(report: ImportReport) -> str:
    if not report.captured:
        return "captured no interactions"
    return (
        f"captured {len(report.captured)} interaction(s) "
        f"(ids {report.captured[0]}..{report.captured[-1]})"
    )
