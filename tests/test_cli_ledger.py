"""`memwarden audit verify / anchor / reset-witness` when the ledger is broken or its witness lost."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli_support import Cli


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    runner = Cli(tmp_path / "home")
    runner.run("init")
    runner.run("project", "add", "atlas")
    for n in range(3):
        runner.run("memory", "add", "-p", "atlas", "-t", "knowledge", f"fact {n}")
    return runner


def test_a_witness_ahead_of_the_chain_is_a_truncated_tail(cli: Cli) -> None:
    witness = cli.home / "ledger.head"
    data = json.loads(witness.read_text())
    data["seq"] += 5
    witness.write_text(json.dumps(data))
    result = cli.run("audit", "verify", "--json", code=1)
    report = json.loads(result.stdout)
    assert report["ok"] is False and report["first_bad_seq"] == data["seq"] - 4
    assert f"witness saw row {data['seq']}" in report["reason"]
    line = cli.error("audit", "verify")
    assert line.startswith(f"error: ledger broken at row {data['seq'] - 4}: ")
    # Every other command keeps working, and says loudly that the ledger is in doubt.
    listed = cli.run("memory", "list", "--json")
    assert len(json.loads(listed.stdout)) == 3
    assert "warning: the ledger's newest rows fail verification" in listed.stderr
    assert "memwarden audit verify" in listed.stderr


def test_lost_witness_is_recovered_with_an_anchor(cli: Cli) -> None:
    anchor = cli.run("audit", "anchor").stdout.strip()
    (cli.home / "ledger.head").unlink()
    line = cli.error("memory", "list")
    assert "witness" in line and "missing" in line and "reset-witness" in line
    # The command the message names is the one that works, as written (--yes included).
    suggested = line.split("`memwarden ")[-1].split("`")[0]
    assert suggested == "audit reset-witness --yes --anchor SEQ:TAG"
    assert cli.error("audit", "verify").startswith("error: the ledger witness")

    report = cli.json("audit", "verify", "--anchor", anchor)
    assert report["ok"] is True and report["checked_against"] == ["anchor"]
    wrong = anchor.split(":")[0] + ":" + "0" * 64
    assert "anchor" in cli.error("audit", "verify", "--anchor", wrong)
    assert "refusing to reset" in cli.error("audit", "reset-witness", "--yes", "--anchor", wrong)
    assert not (cli.home / "ledger.head").exists()

    reset = cli.json(*suggested.replace("SEQ:TAG", anchor).split())
    assert reset["anchor"] == anchor
    assert cli.json("audit", "verify")["checked_against"] == ["witness"]
    cli.run("memory", "add", "-p", "atlas", "-t", "knowledge", "after the recovery")
    assert cli.json("audit", "verify")["ok"] is True


def test_reset_witness_needs_yes(cli: Cli) -> None:
    before = (cli.home / "ledger.head").read_text()
    assert "--yes" in cli.error("audit", "reset-witness", code=2)
    assert (cli.home / "ledger.head").read_text() == before
    assert cli.run("audit", "reset-witness", "--yes").stdout.startswith("witness reset at ")


def test_reset_witness_without_an_anchor_refuses_to_hide_a_cut_tail(cli: Cli) -> None:
    """Rows cut from the chain's end (the append-only trigger dropped first): the witness
    still names the old head. ``reset-witness --yes`` rewrote it at the cut head and said
    nothing of the rows gone, after which ``verify`` was clean (found by an attack session).
    Now it refuses and says how many rows are gone; with --anchor (a head the operator
    kept and expects) it resets as before."""
    import sqlite3

    witness = cli.home / "ledger.head"
    before = witness.read_text()
    seen = json.loads(before)["seq"]
    with sqlite3.connect(cli.home / "memwarden.db") as conn:
        conn.execute("DROP TRIGGER IF EXISTS ledger_no_delete")
        conn.execute("DELETE FROM ledger_payloads WHERE seq > ?", (seen - 2,))
        conn.execute("DELETE FROM ledger WHERE seq > ?", (seen - 2,))
    line = cli.error("audit", "reset-witness", "--yes")
    assert f"the witness saw row {seen} but the chain ends at row {seen - 2}" in line
    assert "2 row(s) are gone" in line and "--anchor" in line
    assert witness.read_text() == before
    assert cli.run("audit", "verify", code=1)
    # The operator who kept the cut head and means it: reset with it as the anchor.
    anchor = cli.run("audit", "anchor").stdout.strip()
    assert anchor.startswith(f"{seen - 2}:")
    assert cli.json("audit", "reset-witness", "--yes", "--anchor", anchor)["anchor"] == anchor
