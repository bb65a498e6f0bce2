"""The witness apart from the database (`init --witness-file`, MEMWARDEN_WITNESS_FILE) and the
doctor's ledger checks: key fingerprint and match, witness present / writable / up to date,
and a warning when the key or the witness shares the database's folder."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from cli_support import Cli
from memwarden import Settings
from memwarden.audit.chain import ChainKey


def _checks(cli: Cli, code: int = 0) -> dict[str, dict[str, Any]]:
    report = json.loads(cli.run("doctor", "--json", code=code).stdout)
    assert report["ok"] is (code == 0)
    return {check["name"]: check for check in report["checks"]}


def test_default_setup_warns_that_key_and_witness_sit_with_the_database(
    settings: Settings,
) -> None:
    cli = Cli(settings.home, settings.database_url)
    cli.run("init")
    checks = _checks(cli)
    key = ChainKey.load(settings.resolved_ledger_key_file).fingerprint()
    assert checks["ledger key"]["status"] == "ok" and checks["ledger key"]["fingerprint"] == key
    assert checks["witness"]["status"] == "ok"
    where = checks["ledger locations"]
    if settings.database_url is None:  # SQLite: the database file lives in home
        assert where["status"] == "warn"
        assert "ledger key" in where["detail"] and "witness" in where["detail"]
        assert "--witness-file" in where["detail"]
    else:  # PostgreSQL: the database is on a server
        assert where["status"] == "ok"
    text = cli.run("doctor").stdout
    assert f"key {key}" in text


def test_witness_apart_from_the_data_folder(settings: Settings, tmp_path: Path) -> None:
    apart = tmp_path / "elsewhere"
    key_file = tmp_path / "keys" / "ledger.key"
    cli = Cli(settings.home, settings.database_url, MEMWARDEN_LEDGER_KEY_FILE=str(key_file))
    out = json.loads(cli.run("init", "--witness-file", str(apart / "ledger.head"), "--json").stdout)
    assert out["witness_file"] == str(apart / "ledger.head")
    assert (apart / "ledger.head").exists() and not (settings.home / "ledger.head").exists()
    # Later commands find it without the flag.
    cli.run("project", "add", "atlas")
    cli.run("memory", "add", "-p", "atlas", "-t", "knowledge", "a fact")
    assert json.loads((apart / "ledger.head").read_text())["seq"] == 2
    assert "ledger ok" in cli.run("audit", "verify").stdout
    checks = _checks(cli)
    assert checks["ledger locations"]["status"] == "ok"
    assert checks["witness"]["status"] == "ok"
    assert checks["witness"]["witness_file"] == str(apart / "ledger.head")
    # MEMWARDEN_WITNESS_FILE wins over what init recorded.
    other = Cli(
        settings.home,
        settings.database_url,
        MEMWARDEN_LEDGER_KEY_FILE=str(key_file),
        MEMWARDEN_WITNESS_FILE=str(tmp_path / "nowhere" / "ledger.head"),
    )
    assert "nowhere" in other.error("audit", "verify")


def test_doctor_fails_on_wrong_key_lagging_and_unwritable_witness(
    settings: Settings, tmp_path: Path
) -> None:
    folder, view = tmp_path / "witness", tmp_path / "witness-view"
    folder.mkdir()
    view.mkdir()
    subprocess.run(["mount", "--bind", str(folder), str(view)], check=True)
    try:
        _doctor_faults(settings, view / "ledger.head")
    finally:
        subprocess.run(["umount", str(view)], check=True)


def _doctor_faults(settings: Settings, witness: Path) -> None:
    cli = Cli(settings.home, settings.database_url, MEMWARDEN_WITNESS_FILE=str(witness))
    cli.run("init")
    cli.run("project", "add", "atlas")
    # A lagging witness: put back the witness as it was before the last write.
    kept = witness.read_bytes()
    cli.run("memory", "add", "-p", "atlas", "-t", "knowledge", "a fact")
    witness.write_bytes(kept)
    lagging = _checks(cli, code=1)["witness"]
    assert lagging["status"] == "fail" and "lags the chain" in lagging["detail"]
    line = cli.error("audit", "verify")  # exit 1, one line
    assert "the witness lags the chain by 1 row(s)" in line and "the first committed at" in line
    report = json.loads(cli.run("audit", "verify", "--json", code=1).stdout)
    assert report["witness_lag"]["rows"] == 1 and report["key_fingerprint"]
    cli.run("memory", "add", "-p", "atlas", "-t", "knowledge", "another fact")  # catches up
    assert _checks(cli)["witness"]["status"] == "ok"
    # An unwritable witness folder (the bind mount made read-only).
    subprocess.run(["mount", "-o", "remount,ro,bind", str(witness.parent)], check=True)
    try:
        unwritable = _checks(cli, code=1)["witness"]
        assert unwritable["status"] == "fail" and "cannot be written" in unwritable["detail"]
    finally:
        subprocess.run(["mount", "-o", "remount,rw,bind", str(witness.parent)], check=True)
    assert _checks(cli)["witness"]["status"] == "ok"
    # A wrong key: both fingerprints named.
    right = ChainKey.load(settings.resolved_ledger_key_file).fingerprint()
    settings.resolved_ledger_key_file.write_text("cd" * 32 + "\n")
    wrong = ChainKey.load(settings.resolved_ledger_key_file).fingerprint()
    key = _checks(cli, code=1)["ledger key"]
    assert key["status"] == "fail" and right in key["detail"] and wrong in key["detail"]
    assert key["fingerprint"] == wrong and key["store_fingerprint"] == right
