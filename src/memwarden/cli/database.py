"""`memwarden init`: create or upgrade the database, its ledger key and witness."""

from __future__ import annotations

import typer

from memwarden.cli.common import JsonFlag, emit_json, safe_url, say, session


def init(ctx: typer.Context, json_out: JsonFlag = False) -> None:
    """Create or upgrade the schema, the ledger key and the witness. Safe to run again."""
    with session(ctx, initialise=True) as mw:
        settings = mw.settings
        head = mw.anchor()
        projects = len(mw.list_projects())
        verifier_key = mw.checkpoint_verifier_key()
    info = {
        "home": str(settings.home),
        "database_url": safe_url(settings.resolved_database_url),
        "ledger_key_file": str(settings.resolved_ledger_key_file),
        "witness_file": str(settings.resolved_witness_file),
        "checkpoint_key_file": str(settings.resolved_checkpoint_key_file),
        "checkpoint_verifier_key": verifier_key,
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
    say(f"  signing key: {info['checkpoint_key_file']}  (signs checkpoints; keep it apart too)")
    say("  checkpoint verifier key (keep it off this machine; it checks every checkpoint):")
    say(f"    {verifier_key}")
