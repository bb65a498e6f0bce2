"""`memwarden index status | rebuild`: the vectors recall ranks by meaning with."""

from __future__ import annotations

from typing import Annotated

import typer

from memwarden.cli.common import JsonFlag, emit_json, progress_bar, say, session, show_progress

app = typer.Typer(
    help="The vector index: vectors of memories and chunks for recall by meaning.",
    no_args_is_help=True,
)


@app.command("status")
def status(ctx: typer.Context, json_out: JsonFlag = False) -> None:
    """The embedder, its model, and how many vectors are missing, stale or orphaned.

    Exit code 1 when the embedder does not load or vectors are missing."""
    with session(ctx) as mw:
        report = mw.embedding_status(load=True)
    if json_out:
        emit_json(report.to_dict())
    else:
        say(f"embedder: {report.embedder} ({report.model or 'none'})")
        if report.error:
            say(f"unavailable: {report.error} — recall uses full text only")
        say(f"memories: {report.memory_vectors} vectors for {report.memories} memories")
        say(f"chunks:   {report.chunk_vectors} vectors for {report.chunks} chunks")
        say(
            f"missing or stale: {report.missing}; orphaned: {report.orphans}; "
            f"of other models: {report.other_models}"
        )
    if report.embedder != "none" and (not report.available or report.missing):
        raise typer.Exit(1)


@app.command("rebuild")
def rebuild(
    ctx: typer.Context,
    full: Annotated[
        bool, typer.Option("--full", help="Embed everything again, not only what is missing.")
    ] = False,
    json_out: JsonFlag = False,
) -> None:
    """Write every missing or stale vector (after a model change: all of them)."""
    with session(ctx) as mw:
        before = mw.embedding_status()
        total = before.memories + before.chunks if full else before.missing
        with progress_bar(show_progress(json_out), "embedding", total) as bar:
            written = mw.rebuild_index((lambda done, _: bar(done)) if bar else None, full=full)
        report = mw.embedding_status()
    if json_out:
        emit_json({"written": written, **report.to_dict()})
    else:
        say(f"wrote {written} vectors ({report.model}); missing now: {report.missing}")
