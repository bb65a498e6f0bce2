"""`memwarden init`: create or upgrade the database, its ledger key and witness."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from memwarden.cli.common import JsonFlag, emit_json, safe_url, say, session
from memwarden.core.opening import record_witness_location

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
    info = {
        "home": str(settings.home),
        "database_url": safe_url(settings.resolved_database_url),
        "ledger_key_file": str(settings.resolved_ledger_key_file),
        "witness_file": str(settings.resolved_witness_file),
        "ledger_head": {"seq": head.seq, "tag": head.tag},
        "projects": projects,
    }
    if json_out:
        emit_json(info)
        return
    say(f"memwarden is ready ({projects} project(s), {head.seq} ledger row(s))")
    say(f"  home:       {info['home']}")
    say(f"  database:   {info['database_url']}")
    say(
        f"  ledger key: {info['ledger_key_file']}  (back it up: the ledger cannot be verified without it)"
    )
    say(f"  witness:    {info['witness_file']}")
