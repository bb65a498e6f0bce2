"""`memwarden init` (create or upgrade the database, its ledger key and witness) and
`memwarden db current|history|upgrade|downgrade` (the schema's version, for an operator)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from memwarden.cli.common import (
    JsonFlag,
    emit_json,
    fail,
    guard,
    load_settings,
    safe_url,
    say,
    session,
)
from memwarden.core import migrations
from memwarden.core.migrations import DowngradePlan, names
from memwarden.core.opening import record_witness_location

app = typer.Typer(
    help="The database schema: its version, history, upgrade and downgrade.",
    no_args_is_help=True,
)

WitnessOpt = Annotated[
    Path | None,
    typer.Option(
        "--witness-file",
        help="Keep the ledger witness here, apart from the data folder (another disk, not in "
        "the database's backups). Recorded for later commands; MEMWARDEN_WITNESS_FILE wins.",
        show_default=False,
    ),
]


def init(ctx: typer.Context, witness_file: WitnessOpt = None, json_out: JsonFlag = False) -> None:
    """Create or upgrade the schema, the ledger key and the witness. Safe to run again."""
    overrides = {"ledger_witness_file": witness_file.absolute()} if witness_file else None
    with session(ctx, initialise=True, overrides=overrides) as mw:
        settings = mw.settings
        if witness_file is not None:
            record_witness_location(settings, settings.resolved_witness_file)
        head = mw.anchor()
        projects = len(mw.list_projects())
        change = mw.schema_change
        verifier_key = mw.checkpoint_verifier_key()
    upgraded = change is not None and change.changed and bool(change.before)
    info = {
        "home": str(settings.home),
        "database_url": safe_url(settings.resolved_database_url),
        "pg_schema": settings.resolved_pg_schema,
        "ledger_key_file": str(settings.resolved_ledger_key_file),
        "witness_file": str(settings.resolved_witness_file),
        "checkpoint_key_file": str(settings.resolved_checkpoint_key_file),
        "checkpoint_verifier_key": verifier_key,
        "ledger_head": {"seq": head.seq, "tag": head.tag},
        "projects": projects,
        "schema": {
            "created": change is not None and not change.before,
            "upgraded": upgraded,
            **(change.to_dict() if change is not None else {}),
        },
    }
    if json_out:
        emit_json(info)
        return
    if upgraded and change is not None:
        say(f"upgraded the schema from {names(change.before)} to {names(change.after)}")
    say(f"memwarden is ready ({projects} project(s), {head.seq} ledger row(s))")
    say(f"  home:       {info['home']}")
    say(f"  database:   {info['database_url']}")
    if settings.resolved_pg_schema:
        say(f"  pg schema:  {settings.resolved_pg_schema}")
    say(
        f"  ledger key: {info['ledger_key_file']}  (back it up: the ledger cannot be verified without it)"
    )
    say(f"  witness:    {info['witness_file']}")
    say(f"  signing key: {info['checkpoint_key_file']}  (signs checkpoints; keep it apart too)")
    say("  checkpoint verifier key (keep it off this machine; it checks every checkpoint):")
    say(f"    {verifier_key}")


@app.command("current")
def current(ctx: typer.Context, json_out: JsonFlag = False) -> None:
    """The schema revisions the database is at, against this memwarden's. Exit 1 unless current."""
    with guard():
        found = migrations.status(load_settings(ctx))
    if json_out:
        emit_json(found.to_dict())
    else:
        say(f"database at: {names(found.current)}")
        say(f"this code:   {names(found.heads)}")
        if found.state == "current":
            say("the schema is current")
        elif found.state == "empty":
            say("the database is not initialised: run `memwarden init`")
        elif found.state == "newer":
            say("the database is newer than this memwarden: upgrade memwarden")
        else:
            say(f"not applied: {', '.join(found.missing)}: run `memwarden db upgrade`")
    if found.state != "current":
        raise typer.Exit(1)


@app.command("history")
def history(ctx: typer.Context, json_out: JsonFlag = False) -> None:
    """Every schema revision, oldest first: applied (*) or not, and the heads."""
    with guard():
        found = migrations.history(load_settings(ctx))
    if json_out:
        emit_json([rev.to_dict() for rev in found])
        return
    width = max((len(rev.id) for rev in found), default=4)
    for rev in found:
        mark = "*" if rev.applied else " "
        parents = ",".join(rev.parents) or "base"
        head = " (head)" if rev.head else ""
        say(f"{mark} {rev.id:<{width}}  <- {parents:<6} {rev.summary}{head}")
    say("* applied to this database")


TargetArg = Annotated[str, typer.Argument(help="A revision id, `heads`, or `base`.")]


@app.command("upgrade")
def upgrade(
    ctx: typer.Context,
    target: Annotated[str, typer.Argument(help="A revision id; default every head.")] = "heads",
    json_out: JsonFlag = False,
) -> None:
    """Apply the migrations up to REV (default: every head). Never touches data it keeps."""
    with guard():
        change = migrations.upgrade(load_settings(ctx), target)
    if json_out:
        emit_json({"changed": change.changed, **change.to_dict()})
    elif change.changed:
        say(f"upgraded the schema from {names(change.before)} to {names(change.after)}")
    else:
        say(f"the schema is already at {names(change.after)}: nothing to do")


@app.command("downgrade")
def downgrade(
    ctx: typer.Context,
    target: TargetArg,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    force: Annotated[
        bool,
        typer.Option("--force", help="Allow a downgrade that drops the ledger's rows."),
    ] = False,
    json_out: JsonFlag = False,
) -> None:
    """Undo migrations down to REV (`base` undoes them all). Shows what it drops and asks
    first; refuses to drop the ledger's rows without --force."""
    with guard():
        settings = load_settings(ctx)
        plan = migrations.plan_downgrade(settings, target)
    if not plan.undone:
        if json_out:
            emit_json({"changed": False, **plan.to_dict()})
        else:
            say(f"the schema is at {names(plan.before)}: nothing to undo for {target!r}")
        return
    if not json_out:
        _show_plan(plan)
    if plan.drops_ledger and not force:
        lost = ", ".join(
            f"{plan.rows_lost[t]} in {t}" for t in sorted(plan.rows_lost) if t.startswith("ledger")
        )
        fail(
            f"refusing: this downgrade drops the ledger's rows ({lost}), and with them the audit "
            'trail. Back up first (SQLite: `sqlite3 memwarden.db ".backup memwarden-backup.db"`; '
            "PostgreSQL: `pg_dump`), keep the ledger key and witness with it, then add --force"
        )
    if not yes and not _confirmed("Downgrade the schema?"):
        fail("downgrade cancelled; nothing changed (--yes skips the question)")
    with guard():
        change = migrations.downgrade(settings, target)
    if json_out:
        emit_json({"changed": change.changed, **plan.to_dict(), "after": sorted(change.after)})
    else:
        say(f"downgraded the schema from {names(change.before)} to {names(change.after)}")


def _confirmed(question: str) -> bool:
    try:
        return typer.confirm(question, default=False, err=True)
    except typer.Abort:  # no answer (end of input, Ctrl-C): no
        typer.echo("", err=True)
        return False


def _show_plan(plan: DowngradePlan) -> None:
    say(f"downgrade from {names(plan.before)} to {names(plan.after)}")
    say(f"  undoes: {', '.join(plan.undone)}")
    if plan.rows_lost:
        lost = ", ".join(f"{table} ({rows} rows)" for table, rows in sorted(plan.rows_lost.items()))
        say(f"  drops:  {lost}")
    else:
        say("  drops:  no rows")
