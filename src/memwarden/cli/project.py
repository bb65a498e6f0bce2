"""`memwarden project add | list | remove`."""

from __future__ import annotations

from typing import Annotated

import typer

from memwarden.cli import render
from memwarden.cli.common import JsonFlag, emit_json, say, session

app = typer.Typer(help="Projects: the namespaces everything else belongs to.", no_args_is_help=True)


@app.command("add")
def add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Letters, digits, '.', '_' or '-'.")],
    description: Annotated[str, typer.Option("--description", "-d", help="What it is.")] = "",
    json_out: JsonFlag = False,
) -> None:
    """Create a project."""
    with session(ctx) as mw:
        project = mw.add_project(name, description)
    if json_out:
        emit_json(project.to_dict())
    else:
        say(f"created project {project.name}")


@app.command("list")
def list_(ctx: typer.Context, json_out: JsonFlag = False) -> None:
    """List the projects."""
    with session(ctx) as mw:
        projects = mw.list_projects()
    if json_out:
        emit_json([p.to_dict() for p in projects])
    else:
        render.projects(projects)


@app.command("remove")
def remove(
    ctx: typer.Context,
    name: Annotated[
        str, typer.Argument(help="An empty project (no memories, state or documents).")
    ],
    json_out: JsonFlag = False,
) -> None:
    """Delete an empty project."""
    with session(ctx) as mw:
        mw.remove_project(name)
    if json_out:
        emit_json({"removed": name})
    else:
        say(f"removed project {name}")
