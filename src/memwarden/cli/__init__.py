"""The command line: a thin layer over the library. Each command group lives in its own module."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from memwarden import __version__
from memwarden.cli import alert as alert_cli
from memwarden.cli import audit, database, demo, ingest, key, memory, project, recall, serve, state
from memwarden.cli import capture as capture_cli
from memwarden.cli import checkpoint as checkpoint_cli
from memwarden.cli import doctor as doctor_cli
from memwarden.cli import extract as extract_cli
from memwarden.cli import harness as harness_cli
from memwarden.cli import index as index_cli
from memwarden.cli import integrity as integrity_cli
from memwarden.cli import nightly as nightly_cli
from memwarden.cli import oplog as oplog_commands
from memwarden.cli import triage as triage_cli
from memwarden.cli.common import GlobalOptions, configure_logging

app = typer.Typer(
    name="memwarden",
    help="memwarden: an auditable memory core for AI agents.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"memwarden {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    home: Annotated[
        Path | None,
        typer.Option("--home", help="Data folder (overrides MEMWARDEN_HOME).", show_default=False),
    ] = None,
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            help="SQLAlchemy URL (overrides MEMWARDEN_DATABASE_URL); default a SQLite file in home.",
            show_default=False,
        ),
    ] = None,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """memwarden: an auditable memory core for AI agents.

    Exit codes: 0 success, 1 domain error, 2 usage error. MEMWARDEN_DEBUG=1 shows tracebacks."""
    ctx.obj = GlobalOptions(home=home, database_url=database_url)
    configure_logging(ctx)


app.command("init")(database.init)
app.add_typer(database.app, name="db")
app.command("doctor")(doctor_cli.doctor)
app.add_typer(project.app, name="project")
app.add_typer(state.app, name="state")
app.command("ingest")(ingest.ingest)
app.add_typer(memory.app, name="memory")
app.command("recall")(recall.recall)
app.command("context")(recall.context)
audit.app.command("checkpoint")(checkpoint_cli.checkpoint)
audit.app.command("prove")(checkpoint_cli.prove)
audit.app.command("extends")(checkpoint_cli.extends)
audit.app.command("export")(checkpoint_cli.export)
audit.app.command("rebuild-tree")(checkpoint_cli.rebuild_tree)
app.add_typer(audit.app, name="audit")
app.add_typer(oplog_commands.app, name="oplog")
app.command("demo")(demo.demo)
app.add_typer(key.app, name="key")
app.command("serve")(serve.serve)
app.command("mcp")(serve.serve_mcp)
app.command("capture")(capture_cli.capture)
app.command("extract")(extract_cli.extract)
app.command("promote-reinforced")(extract_cli.promote_reinforced)
app.command("expire-stale")(extract_cli.expire_stale)
app.add_typer(triage_cli.app, name="triage")
app.add_typer(alert_cli.app, name="alert")
app.add_typer(integrity_cli.app, name="integrity")
app.add_typer(index_cli.app, name="index")
app.add_typer(harness_cli.app, name="harness")
app.add_typer(nightly_cli.app, name="nightly")


def main() -> None:
    app()
