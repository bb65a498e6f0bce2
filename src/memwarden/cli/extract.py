"""`memwarden extract`, `promote-reinforced`, `expire-stale`: candidates born and moved on."""

from __future__ import annotations

from typing import Annotated

import typer

from memwarden.cli import triage_view
from memwarden.cli.common import JsonFlag, console, emit_json, fail, say, session, warn
from memwarden.core.automation import MoveReport
from memwarden.core.extraction import ExtractReport

ProjectOpt = Annotated[
    str | None, typer.Option("--project", "-p", help="Only this project (default: all).")
]


def extract(
    ctx: typer.Context,
    project: ProjectOpt = None,
    extractor: Annotated[
        str | None,
        typer.Option(
            "--extractor", help="rules (default, offline) or llm (MEMWARDEN_LLM_URL ...)."
        ),
    ] = None,
    batch_size: Annotated[
        int | None, typer.Option("--batch-size", min=1, max=10_000, help="Interactions per commit.")
    ] = None,
    limit: Annotated[
        int | None, typer.Option("--limit", min=1, help="Process at most this many interactions.")
    ] = None,
    json_out: JsonFlag = False,
) -> None:
    """Turn the interactions not yet processed into candidate memories.

    A watermark per project and extractor makes a rerun process only new interactions, and an
    interrupted run resume where it stopped. Exit 1 when the run had to stop early."""
    with session(ctx) as mw:
        report = mw.extract(project, extractor=extractor, batch_size=batch_size, limit=limit)
    for kind, count in sorted(report.failures.items()):
        warn(f"{count} interaction(s) failed extraction: {kind}")
    if json_out:
        emit_json(report.to_dict())
    else:
        say(extract_summary(report))
    if report.stopped:
        fail(f"extraction stopped early ({report.stopped}); rerun to resume from there")


def extract_summary(report: ExtractReport) -> str:
    invalid = f", {report.invalid_candidates} invalid" if report.invalid_candidates else ""
    return (
        f"extracted {report.interactions} interaction(s) with {report.extractor} "
        f"{report.version}: {len(report.created)} new candidate(s), "
        f"{len(report.reinforced)} reinforcement(s){invalid}"
    )


def promote_reinforced(
    ctx: typer.Context,
    min_reinforcements: Annotated[
        int | None,
        typer.Option(
            "--min-reinforcements",
            min=1,
            help="Default MEMWARDEN_AUTO_PROMOTE_MIN_REINFORCEMENTS (3).",
        ),
    ] = None,
    min_confidence: Annotated[
        float | None,
        typer.Option(
            "--min-confidence",
            min=0.0,
            max=1.0,
            help="Default MEMWARDEN_AUTO_PROMOTE_MIN_CONFIDENCE (0.6).",
        ),
    ] = None,
    project: ProjectOpt = None,
    json_out: JsonFlag = False,
) -> None:
    """Promote candidates reinforced often enough (actor auto-promote). Idempotent."""
    with session(ctx) as mw:
        report = mw.promote_reinforced(
            min_reinforcements=min_reinforcements, min_confidence=min_confidence, project=project
        )
    _moved(report, json_out, "auto-promoted")


def expire_stale(
    ctx: typer.Context,
    days: Annotated[
        int | None,
        typer.Option("--days", min=0, help="Default MEMWARDEN_CANDIDATE_EXPIRY_DAYS (14)."),
    ] = None,
    project: ProjectOpt = None,
    json_out: JsonFlag = False,
) -> None:
    """Expire candidates older than DAYS and never reinforced (actor candidate-expiry)."""
    with session(ctx) as mw:
        report = mw.expire_stale(days=days, project=project)
    _moved(report, json_out, "expired")


def _moved(report: MoveReport, json_out: bool, verb: str) -> None:
    if json_out:
        emit_json(report.to_dict())
        return
    say(f"{verb} {len(report.moved)} candidate(s) as {report.actor}")
    if report.moved:
        triage_view.moved(console(), report.moved)
