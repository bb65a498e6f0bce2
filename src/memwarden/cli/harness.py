"""`memwarden harness run | history`: does recall still find what it should?

``run`` checks every case of the fixtures file (``--fixtures``, else
``MEMWARDEN_HARNESS_FIXTURES``, else the bundled sample's for atlas-rocket), prints the pass
rate and each failing case, and records the run. Exit 0 when the pass rate reaches
``MEMWARDEN_HARNESS_MIN_PASS_RATE`` (85%), 1 when it does not or the fixtures are unusable.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from memwarden.cli.common import (
    JsonFlag,
    console,
    emit_json,
    progress_bar,
    say,
    session,
    show_progress,
    warn,
)
from memwarden.cli.render import preview
from memwarden.observability.harness import HarnessRun

app = typer.Typer(
    help="The retrieval harness: queries whose recall must find what they expect.",
    no_args_is_help=True,
)

LimitOpt = Annotated[int, typer.Option("--limit", min=1, max=1000, help="How many runs.")]


@app.command("run")
def run(
    ctx: typer.Context,
    fixtures: Annotated[
        Path | None,
        typer.Option(
            "--fixtures",
            "-f",
            help="Fixtures file (JSON or YAML); default MEMWARDEN_HARNESS_FIXTURES, else the "
            "bundled sample's.",
            show_default=False,
        ),
    ] = None,
    json_out: JsonFlag = False,
) -> None:
    """Run the harness: the pass rate and each failing case; the run is recorded."""
    with session(ctx) as mw:
        cases = mw.harness_fixtures(fixtures)
        floor = mw.settings.harness_min_pass_rate
        with progress_bar(show_progress(json_out), "harness", len(cases.cases)) as tick:
            result = mw.run_harness(fixtures, tick)
    if json_out:
        emit_json(result.to_dict() | {"min_pass_rate": floor})
    else:
        show_run(result)
    if result.pass_rate < floor:
        warn(f"pass rate {result.pass_rate:.1%} is below {floor:.0%}")
        raise typer.Exit(1)


def show_run(result: HarnessRun) -> None:
    say(
        f"harness run {result.id}: {result.passed}/{result.total} passed "
        f"({result.pass_rate:.1%}) in {result.duration_ms:.0f} ms — {result.fixtures}"
    )
    for failure in result.failures:
        if "omitted" in failure:
            say(f"  … and {failure['omitted']} more failing case(s), not recorded")
            continue
        say(_failure_text(failure))


def _failure_text(failure: dict[str, Any]) -> str:
    label = f" [{failure['name']}]" if failure.get("name") else ""
    lines = [f"FAIL {failure['project']}{label}: {failure['query']!r} (top {failure['k']})"]
    missing = failure["missing"]
    if missing["ids"]:
        lines.append(f"  missing memory ids: {', '.join(str(i) for i in missing['ids'])}")
    for text in missing["text"]:
        lines.append(f"  missing text: {text!r}")
    if failure.get("error"):
        lines.append(f"  error: {failure['error']}")
    elif not failure["got"]:
        lines.append("  got: nothing")
    for rank, hit in enumerate(failure["got"], start=1):
        lines.append(f"  got {rank}. {hit['kind']} {hit['id']}: {preview(hit['preview'], 90)}")
    return "\n".join(lines)


@app.command("history")
def history(ctx: typer.Context, limit: LimitOpt = 20, json_out: JsonFlag = False) -> None:
    """The latest harness runs, newest first."""
    with session(ctx) as mw:
        runs = mw.harness_runs(limit)
    if json_out:
        emit_json([r.to_dict() for r in runs])
        return
    if not runs:
        say("no harness runs yet: `memwarden harness run`")
        return
    table = Table(show_lines=False)
    for name in ("id", "started", "passed", "pass rate", "ms", "via", "fixtures"):
        table.add_column(name, overflow="fold")
    for r in runs:
        table.add_row(
            *(
                Text(cell)
                for cell in (
                    str(r.id),
                    r.started_at.isoformat(timespec="seconds"),
                    f"{r.passed}/{r.total}",
                    f"{r.pass_rate:.1%}",
                    f"{r.duration_ms:.0f}",
                    r.transport,
                    r.fixtures,
                )
            )
        )
    console().print(table)
