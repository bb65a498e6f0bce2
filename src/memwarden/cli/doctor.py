"""`memwarden doctor`: check this installation's setup; exit 1 when a check fails."""

from __future__ import annotations

import typer

from memwarden.cli.common import JsonFlag, emit_json, guard, load_settings, say
from memwarden.core import doctor as doctor_checks

_MARK = {"ok": "ok  ", "warn": "WARN", "fail": "FAIL"}


def doctor(ctx: typer.Context, json_out: JsonFlag = False) -> None:
    """Check the store, its ledger key and witness, storage and alerts: one line per check.

    Exit 0 when nothing fails (warnings included), 1 when a check fails."""
    with guard():
        settings = load_settings(ctx)
    report = doctor_checks.run(settings)
    if json_out:
        emit_json(report.to_dict())
    else:
        for result in report.results:
            say(f"{_MARK[result.status]}  {result.name}: {result.detail}")
    if not report.ok:
        raise typer.Exit(1)
