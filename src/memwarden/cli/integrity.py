"""`memwarden integrity check | history`: find drift, repair what is safe, read past runs.

Exit codes of ``check``: 0 clean, 1 findings, 2 the scan (or one of its checks) could not run
— so a cron line or a CI step can tell "drift" from "broken".
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from memwarden.cli.common import JsonFlag, console, emit_json, say, session, show_progress
from memwarden.core.service import Memwarden
from memwarden.observability.integrity import (
    CheckResult,
    Finding,
    IntegrityReport,
    IntegrityRun,
    RepairRecord,
)

CLEAN, FINDINGS, CANNOT_RUN = 0, 1, 2

app = typer.Typer(
    help="The integrity scan: drift in references, duplicates, supersede chains, the ledger "
    "and the database engine.",
    no_args_is_help=True,
)


@contextmanager
def _cannot_run_is_2(ctx: typer.Context, **options: Any) -> Iterator[Memwarden]:
    """The session, except that failing to open or scan exits 2, not 1: exit 1 means drift."""
    try:
        with session(ctx, **options) as mw:
            yield mw
    except typer.Exit as stop:
        if stop.exit_code == 1:
            raise typer.Exit(CANNOT_RUN) from None
        raise


@contextmanager
def _progress(enabled: bool) -> Iterator[Callable[[str, int, int], None] | None]:
    if not enabled:
        yield None
        return
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console(), transient=True) as bar:
        task = bar.add_task("integrity", total=None)

        def update(name: str, done: int, total: int) -> None:
            bar.update(task, description=f"checking {name}", completed=done, total=total)

        yield update


@app.command("check")
def check(
    ctx: typer.Context,
    full: Annotated[
        bool,
        typer.Option(
            "--full",
            help="Verify the whole ledger, replay every memory and run SQLite's integrity_check "
            "(default: continue from the previous scan).",
        ),
    ] = False,
    fix: Annotated[
        bool,
        typer.Option(
            "--fix",
            help="Repair what is safe (dangling chunk references, duplicates, broken supersede "
            "links), each repair audited as integrity-repair, then scan again.",
        ),
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="With --fix: print the repairs, make none.")
    ] = False,
    json_out: JsonFlag = False,
) -> None:
    """Scan for drift and record the run. Exit 0 clean, 1 findings, 2 the scan could not run."""
    if dry_run and not fix:
        raise typer.BadParameter("--dry-run only goes with --fix", param_hint="--dry-run")
    with (
        _cannot_run_is_2(ctx, quick_check=False) as mw,
        _progress(show_progress(json_out)) as progress,
    ):
        report = mw.integrity_check(full=full, fix=fix, dry_run=dry_run, progress=progress)
    if json_out:
        emit_json(report.to_dict())
    else:
        _show(report)
    raise typer.Exit(report.exit_code)


@app.command("history")
def history(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option("--limit", min=1, max=500, help="Runs to show.")] = 20,
    json_out: JsonFlag = False,
) -> None:
    """The latest scans, newest first."""
    with _cannot_run_is_2(ctx) as mw:
        found = mw.integrity_runs(limit)
    if json_out:
        emit_json([run.to_dict() for run in found])
        return
    if not found:
        say("no integrity scan has run yet: run `memwarden integrity check`")
        return
    _table(
        None,
        ("id", "started", "full", "status", "seconds", "findings"),
        (
            (
                run.id,
                run.started_at.isoformat(timespec="seconds"),
                "yes" if run.full else "no",
                run.status,
                f"{run.seconds:.3f}" if run.seconds is not None else "-",
                ", ".join(f"{f.check} {f.count}" for f in run.findings) or "-",
            )
            for run in found
        ),
    )


# -- human output -----------------------------------------------------------------------------
def _show(report: IntegrityReport) -> None:
    if report.before_repair is not None:
        say("before the repairs:")
        _findings(report.before_repair.findings)
    if report.repairs:
        _repairs(report.repairs, report.dry_run)
    elif report.dry_run:
        say("nothing to repair")
    if report.before_repair is not None:
        say("after the repairs:")
    _checks(report.run.checks)
    _findings(report.run.findings)
    _summary(report.run)


def _checks(checks: Sequence[CheckResult]) -> None:
    _table(
        "checks",
        ("check", "status", "seconds", "scanned", "found", "detail"),
        (
            (c.name, c.status, f"{c.seconds:.3f}", c.scanned, c.found, c.detail or "")
            for c in checks
        ),
    )


def _findings(findings: Sequence[Finding]) -> None:
    if not findings:
        say("no findings")
        return
    _table(
        "findings",
        ("finding", "severity", "count", "examples", "what it means"),
        (
            (f.check, f.severity, f.count, ", ".join(str(e) for e in f.examples), f.message)
            for f in findings
        ),
    )


def _repairs(repairs: Sequence[RepairRecord], dry_run: bool) -> None:
    _table(
        "repair plan (nothing written)" if dry_run else "repairs",
        ("finding", "target", "repair", "note", "outcome"),
        (
            (
                r.check,
                r.target,
                r.action,
                r.note,
                "planned" if dry_run else ("done" if r.applied else f"not applied: {r.error}"),
            )
            for r in repairs
        ),
    )


def _summary(run: IntegrityRun) -> None:
    seconds = f"{run.seconds:.3f} s" if run.seconds is not None else "?"
    kind = "full scan" if run.full else "scan"
    if run.status == "clean":
        say(f"integrity: clean ({kind} {run.id}, {len(run.checks)} checks in {seconds})")
    elif run.status == "findings":
        total = sum(f.count for f in run.findings)
        say(f"integrity: {total} findings ({kind} {run.id} in {seconds})")
    else:
        failed = ", ".join(c.name for c in run.checks if c.status == "error")
        typer.echo(f"integrity: the scan could not run every check ({failed})", err=True)


def _table(title: str | None, columns: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
    table = Table(title=title, title_justify="left")
    for name in columns:
        table.add_column(name, overflow="fold")
    for row in rows:
        table.add_row(*(Text(str(cell)) for cell in row))
    console().print(table)
