"""`memwarden triage`: the candidate queue, decided by a person (actor ``human-triage``).

Without a subcommand it walks the queue interactively (see ``triage_session``)."""

from __future__ import annotations

from typing import Annotated

import typer

from memwarden.cli import triage_view
from memwarden.cli.common import JsonFlag, NoteOpt, console, emit_json, say, session
from memwarden.cli.triage_session import run_session, terminal_key, terminal_text

app = typer.Typer(
    help="The triage queue: list, show, promote, reject; no subcommand: interactive.",
    invoke_without_command=True,
)

ProjectOpt = Annotated[str | None, typer.Option("--project", "-p", help="Only this project.")]
TypeOpt = Annotated[str | None, typer.Option("--type", "-t", help="Only this memory type.")]
Ids = Annotated[list[int], typer.Argument(help="Candidate memory ids.", min=1)]


@app.callback()
def interactive(
    ctx: typer.Context,
    project: ProjectOpt = None,
    type_: TypeOpt = None,
    note: NoteOpt = None,
) -> None:
    """Walk the queue: p promote, r reject, e edit then promote, s skip, q quit."""
    if ctx.invoked_subcommand is not None:
        return
    with session(ctx) as mw:
        run_session(
            mw, console(), terminal_key, terminal_text, project=project, type=type_, note=note
        )


@app.command("list")
def list_(
    ctx: typer.Context,
    project: ProjectOpt = None,
    type_: TypeOpt = None,
    limit: Annotated[int, typer.Option("--limit", help="At most this many (1-500).")] = 50,
    after: Annotated[
        int | None, typer.Option("--after", help="Cursor: ids below this one (next page).")
    ] = None,
    json_out: JsonFlag = False,
) -> None:
    """Candidates waiting for triage, newest first, with the interaction each came from."""
    with session(ctx) as mw:
        items = mw.triage_queue(project=project, type=type_, after_id=after, limit=limit)
        total = mw.triage_size(project, type_)
    if json_out:
        emit_json({"total": total, "items": [i.to_dict() for i in items]})
    else:
        triage_view.queue(console(), items, total, more=len(items) == limit)


@app.command("show")
def show(
    ctx: typer.Context,
    memory_id: Annotated[int, typer.Argument(help="The memory's id.", min=1)],
    json_out: JsonFlag = False,
) -> None:
    """One candidate with its source interaction and similar active memories."""
    with session(ctx) as mw:
        detail = mw.triage_detail(memory_id)
    if json_out:
        emit_json(detail.to_dict())
    else:
        triage_view.candidate(console(), detail)


@app.command("promote")
def promote(ctx: typer.Context, ids: Ids, note: NoteOpt = None, json_out: JsonFlag = False) -> None:
    """Promote candidates to active (all or nothing)."""
    with session(ctx) as mw:
        done = mw.triage_promote(ids, note)
    if json_out:
        emit_json([m.to_dict() for m in done])
    else:
        say(f"promoted {len(done)} candidate(s): {', '.join(str(m.id) for m in done)}")


@app.command("reject")
def reject(ctx: typer.Context, ids: Ids, note: NoteOpt = None, json_out: JsonFlag = False) -> None:
    """Reject candidates (all or nothing)."""
    with session(ctx) as mw:
        done = mw.triage_reject(ids, note)
    if json_out:
        emit_json([m.to_dict() for m in done])
    else:
        say(f"rejected {len(done)} candidate(s): {', '.join(str(m.id) for m in done)}")
