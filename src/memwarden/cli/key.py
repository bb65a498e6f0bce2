"""`memwarden key create | list | revoke`: API keys for the HTTP API."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated

import typer
from rich.table import Table

from memwarden.cli.common import JsonFlag, console, emit_json, say, session
from memwarden.core.keys import ROLES
from memwarden.core.provenance import FLAGS, Scopes
from memwarden.errors import InvalidInputError, NotFoundError

ScopeOpt = Annotated[
    list[str] | None,
    typer.Option("--scope", "-s", help=f"Grant a scope (repeat): {', '.join(FLAGS)}."),
]
ProjectOpt = Annotated[
    list[str] | None,
    typer.Option("--project", "-p", help="Limit reading and writing to this project (repeat)."),
]
ReadProjectOpt = Annotated[
    list[str] | None,
    typer.Option("--read-project", help="Also allow reading this project (repeat)."),
]


def _scopes(
    role: str, scope: list[str] | None, project: list[str] | None, read: list[str] | None
) -> Scopes | None:
    """Explicit grants on top of the role's defaults; None when nothing is given."""
    if not scope and not project and not read:
        return None
    unknown = sorted(set(scope or []) - set(FLAGS))
    if unknown:
        raise InvalidInputError(f"unknown scope {unknown[0]!r}: one of {', '.join(FLAGS)}")
    base = Scopes.for_role(role)
    writes = frozenset(project) if project else None
    reads = frozenset([*(project or []), *(read or [])]) if (project or read) else None
    return replace(
        base,
        read_projects=reads,
        write_projects=writes,
        **{name: getattr(base, name) or name in (scope or []) for name in FLAGS},
    )


app = typer.Typer(help="API keys: who may use the HTTP API, and as what.", no_args_is_help=True)


@app.command("create")
def create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Who holds it; the audit actor is api:<name>.")],
    role: Annotated[str, typer.Option("--role", "-r", help=f"One of {', '.join(ROLES)}.")] = "read",
    scope: ScopeOpt = None,
    project: ProjectOpt = None,
    read_project: ReadProjectOpt = None,
    json_out: JsonFlag = False,
) -> None:
    """Create a key and print it once: only its hash is stored.

    A write key writes candidates only, in its projects (all unless --project is given);
    writing active memories, promoting, rejecting, erasing and changing state are scopes
    granted with --scope."""
    with session(ctx) as mw:
        key, token = mw.create_key(name, role, _scopes(role, scope, project, read_project))
    if json_out:
        emit_json({**key.to_dict(), "key": token})
        return
    say(token)
    typer.echo(
        f"created {key.role} key {key.name!r} (id {key.prefix}); it is shown only now: keep it safe",
        err=True,
    )


@app.command("list")
def list_(
    ctx: typer.Context,
    all_: Annotated[bool, typer.Option("--all", help="Include revoked keys.")] = False,
    json_out: JsonFlag = False,
) -> None:
    """List the keys (never the keys themselves: their names, roles and ids)."""
    with session(ctx) as mw:
        keys = mw.list_keys(include_revoked=all_)
    if json_out:
        emit_json([key.to_dict() for key in keys])
        return
    if not keys:
        say("no API keys: the server runs open, on loopback only")
        return
    grid = Table("name", "role", "scopes", "projects", "id", "created", "revoked")
    for key in keys:
        scopes = key.scopes
        grid.add_row(
            key.name,
            key.role,
            ", ".join(scopes.granted()) or ("candidates" if scopes.write else "read"),
            ", ".join(sorted(scopes.read_projects)) if scopes.read_projects is not None else "all",
            key.prefix,
            key.created_at.strftime("%Y-%m-%d %H:%M:%S"),
            key.revoked_at.strftime("%Y-%m-%d %H:%M:%S") if key.revoked_at else "",
        )
    console().print(grid)


@app.command("grant")
def grant(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The key's name.")],
    scope: ScopeOpt = None,
    project: ProjectOpt = None,
    read_project: ReadProjectOpt = None,
    json_out: JsonFlag = False,
) -> None:
    """Set a key's scopes and projects (replacing what it had; no option: its role's defaults)."""
    with session(ctx) as mw:
        current = next((k for k in mw.list_keys(include_revoked=False) if k.name == name), None)
        if current is None:
            raise NotFoundError(f"no live key named {name!r}")
        scopes = _scopes(current.role, scope, project, read_project) or Scopes.for_role(
            current.role
        )
        key = mw.set_key_scopes(name, scopes)
    if json_out:
        emit_json(key.to_dict())
    else:
        granted = ", ".join(key.scopes.granted()) or "candidates only"
        say(f"key {key.name!r} now has: {granted}")


@app.command("revoke")
def revoke(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The key's name.")],
    json_out: JsonFlag = False,
) -> None:
    """Revoke a key: it stops working at once."""
    with session(ctx) as mw:
        key = mw.revoke_key(name)
    if json_out:
        emit_json(key.to_dict())
    else:
        say(f"revoked key {key.name!r} (id {key.prefix})")
