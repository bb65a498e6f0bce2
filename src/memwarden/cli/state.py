"""`memwarden state set | get | list | delete`: trusted key/value facts per project."""

from __future__ import annotations

from typing import Annotated

import typer

from memwarden.cli import render
from memwarden.cli.common import JsonFlag, emit_json, say, session

app = typer.Typer(help="Project state: trusted key/value facts.", no_args_is_help=True)

Project = Annotated[str, typer.Argument(help="The project.")]
Category = Annotated[str, typer.Argument(help="A category, e.g. 'schedule'.")]
Key = Annotated[str, typer.Argument(help="The key within the category.")]


@app.command("set")
def set_(
    ctx: typer.Context,
    project: Project,
    category: Category,
    key: Key,
    value: Annotated[str, typer.Argument(help="The value.")],
    source: Annotated[str, typer.Option("--source", help="Where the fact comes from.")] = "",
    json_out: JsonFlag = False,
) -> None:
    """Set a fact (audited; the previous value stays in the ledger)."""
    with session(ctx) as mw:
        entry = mw.set_state(project, category, key, value, source)
    if json_out:
        emit_json(entry.to_dict())
    else:
        say(f"{entry.project}: {entry.category}/{entry.key} = {entry.value}")


@app.command("get")
def get(
    ctx: typer.Context, project: Project, category: Category, key: Key, json_out: JsonFlag = False
) -> None:
    """Print one fact's value."""
    with session(ctx) as mw:
        entry = mw.get_state(project, category, key)
    if json_out:
        emit_json(entry.to_dict())
    else:
        say(entry.value)


@app.command("list")
def list_(
    ctx: typer.Context,
    project: Project,
    category: Annotated[str | None, typer.Option("--category", help="Only this category.")] = None,
    json_out: JsonFlag = False,
) -> None:
    """List a project's facts."""
    with session(ctx) as mw:
        entries = mw.list_state(project, category)
    if json_out:
        emit_json([e.to_dict() for e in entries])
    else:
        render.state(entries)


@app.command("delete")
def delete(
    ctx: typer.Context, project: Project, category: Category, key: Key, json_out: JsonFlag = False
) -> None:
    """Delete a fact (audited)."""
    with session(ctx) as mw:
        entry = mw.delete_state(project, category, key)
    if json_out:
        emit_json({"deleted": entry.to_dict()})
    else:
        say(f"deleted {entry.project}: {entry.category}/{entry.key}")
