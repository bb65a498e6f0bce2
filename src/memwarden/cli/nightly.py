"""`memwarden nightly [history | schedule]`: the nightly pipeline, its runs and its schedule.

Exit codes of a run: 0 every step ok (or skipped), 1 a step failed (the run is recorded and a
critical alert raised) or the run could not start, 3 another nightly run holds the lock.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn
from rich.table import Table
from rich.text import Text

from memwarden.cli.common import (
    JsonFlag,
    console,
    emit_json,
    guard,
    load_settings,
    one_line,
    say,
    session,
    show_progress,
)
from memwarden.nightly import STEP_NAMES, cron, run_nightly
from memwarden.observability.pipeline import NightlyRun, RunInProgressError, StepRecord

EXIT_BUSY = 3

app = typer.Typer(
    help="The nightly pipeline: extract, promote, expire, harness, checks, integrity, retention.",
    invoke_without_command=True,
)


@app.callback()
def nightly(
    ctx: typer.Context,
    skip: Annotated[
        list[str] | None,
        typer.Option("--skip", help=f"Skip this step (repeatable): {', '.join(STEP_NAMES)}."),
    ] = None,
    json_out: JsonFlag = False,
) -> None:
    """Run the nightly pipeline once (each step isolated; the run is recorded).

    Exit 0 all steps ok or skipped, 1 a step failed, 3 another run is in progress."""
    if ctx.invoked_subcommand is not None:
        return
    for name in skip or ():
        if name not in STEP_NAMES:
            raise typer.BadParameter(
                f"{name!r} is not a step: {', '.join(STEP_NAMES)}", param_hint="--skip"
            )
    busy: RunInProgressError | None = None
    with session(ctx) as mw, _progress(show_progress(json_out)) as tick:
        try:
            run = run_nightly(mw, trigger="cli", skip=skip or (), progress=tick)
        except RunInProgressError as exc:
            busy = exc
    if busy is not None:
        typer.echo(f"error: {one_line(str(busy))}; not starting a second one", err=True)
        raise typer.Exit(EXIT_BUSY)
    if json_out:
        emit_json(run.to_dict())
    else:
        show_run(run)
    if run.status != "ok":
        raise typer.Exit(1)


@contextmanager
def _progress(enabled: bool) -> Iterator[Callable[[int, str | None], None] | None]:
    if not enabled:
        yield None
        return
    columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, console=console(), transient=True) as bar:
        task = bar.add_task("nightly", total=len(STEP_NAMES))

        def tick(done: int, current: str | None) -> None:
            bar.update(task, completed=done, description=f"nightly: {current or 'done'}")

        yield tick


def _counts(step: StepRecord) -> str:
    return ", ".join(f"{k}={v}" for k, v in step.counts.items() if k != "reason")


def show_run(run: NightlyRun) -> None:
    took = f"{run.duration_ms / 1000:.1f} s" if run.duration_ms is not None else "?"
    say(f"nightly run {run.id}: {run.status} in {took} ({run.failed_steps} step(s) failed)")
    for step in run.steps:
        detail = (
            step.error if step.status == "failed" else step.counts.get("reason") or _counts(step)
        )
        say(f"  {step.name:<10} {step.status:<8} {step.duration_ms:8.0f} ms  {detail}")


@app.command("history")
def history(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000, help="How many runs.")] = 20,
    json_out: JsonFlag = False,
) -> None:
    """The latest nightly runs with each step's status, newest first."""
    with session(ctx) as mw:
        runs = mw.nightly_runs(limit)
    if json_out:
        emit_json([r.to_dict() for r in runs])
        return
    if not runs:
        say("no nightly runs yet: `memwarden nightly`")
        return
    table = Table(show_lines=False)
    for name in ("id", "started", "status", "trigger", "s", "steps", "failures"):
        table.add_column(name, overflow="fold")
    for r in runs:
        # One step per line: the failures column keeps the room to show a long error.
        steps = "\n".join(f"{s.name}:{s.status}" for s in r.steps)
        failures = "; ".join(f"{s.name}: {s.error}" for s in r.steps if s.status == "failed")
        table.add_row(
            *(
                Text(cell)
                for cell in (
                    str(r.id),
                    r.started_at.isoformat(timespec="seconds"),
                    r.status,
                    r.trigger,
                    f"{r.duration_ms / 1000:.1f}" if r.duration_ms is not None else "-",
                    steps,
                    failures or "-",
                )
            )
        )
    console().print(table)


@app.command("schedule")
def schedule(
    ctx: typer.Context,
    count: Annotated[int, typer.Option("--count", min=1, max=50, help="How many times.")] = 5,
    json_out: JsonFlag = False,
) -> None:
    """Check MEMWARDEN_NIGHTLY_CRON and print when the server would run the nightly next."""
    with guard():
        line = load_settings(ctx).nightly_cron.strip()
        if not line:
            say("MEMWARDEN_NIGHTLY_CRON is not set: the server runs no nightly (use cron instead)")
            return
        trigger = cron.parse(line)
        times = cron.next_times(trigger, count, datetime.now(UTC))
    if json_out:
        emit_json({"cron": line, "timezone": str(trigger.timezone), "next": times})
        return
    say(f"MEMWARDEN_NIGHTLY_CRON {line!r} ({trigger.timezone}); next runs:")
    for moment in times:
        say(f"  {moment.isoformat(timespec='minutes')}")
