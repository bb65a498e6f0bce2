"""`memwarden key create | list | revoke`: API keys for the HTTP API."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from memwarden.cli.common import JsonFlag, console, emit_json, say, session
from memwarden.core.keys import ROLES

app = typer.Typer(help="API keys: who may use the HTTP API, and as what.", no_args_is_help=True)


@app.command("create")
def create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Who holds it; the audit actor is api:<name>.")],
    role: Annotated[str, typer.Option("--role", "-r", help=f"One of {', '.join(ROLES)}.")] = "read",
    json_out: JsonFlag = False,
) -> None:
    """Create a key and print it once: only its hash is stored."""
    with session(ctx) as mw:
        key, token = mw.create_key(name, role)
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
    grid = Table("name", "role", "id", "created", "revoked")
    for key in keys:
        grid.add_row(
            key.name,
            key.role,
            key.prefix,
            key.created_at.strftime("%Y-%m-%d %H:%M:%S"),
            key.revoked_at.strftime("%Y-%m-%d %H:%M:%S") if key.revoked_at else "",
        )
    console().print(grid)


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
