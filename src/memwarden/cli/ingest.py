"""`memwarden ingest PATH... --project P`: text and Markdown files and folders."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from memwarden.cli.common import (
    JsonFlag,
    emit_json,
    progress_bar,
    say,
    session,
    show_progress,
    warn,
)
from memwarden.core.ingest import IngestReport, collect_files


def ingest(
    ctx: typer.Context,
    paths: Annotated[list[Path], typer.Argument(help="Files or folders (recursive).")],
    project: Annotated[str, typer.Option("--project", "-p", help="The project they belong to.")],
    strict: Annotated[
        bool,
        typer.Option("--strict", help="Fail, ingesting nothing, if any file would be skipped."),
    ] = False,
    json_out: JsonFlag = False,
) -> None:
    """Ingest files: chunks at headings and paragraphs; unchanged files change nothing.

    Each file left out (not text or Markdown, hidden, binary, not UTF-8, too large) is
    named on stderr with the reason and counted; --strict refuses instead."""
    with session(ctx) as mw:
        bar = show_progress(json_out)
        total = len(collect_files(paths)) if bar else None
        with progress_bar(bar, "ingesting", total) as tick:
            done = 0

            def advance(_path: Path) -> None:
                nonlocal done
                done += 1
                if tick is not None:
                    tick(done)

            report = mw.ingest(paths, project, advance, strict=strict)
    for skipped in report.skipped:
        warn(f"skipped {skipped.uri}: {skipped.reason}")
    if json_out:
        emit_json(report.to_dict())
    else:
        say(summary(report, project))


def summary(report: IngestReport, project: str) -> str:
    counts = report.to_dict()
    return (
        f"ingested into {project}: {counts['created']} new, {counts['updated']} updated, "
        f"{counts['unchanged']} unchanged, {counts['skipped']} skipped "
        f"({counts['chunks']} chunks written)"
    )
