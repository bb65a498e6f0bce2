"""`memwarden integrity check | history` (exit codes 0 clean, 1 findings, 2 could not run) and
GET /admin/integrity, both engines."""

from __future__ import annotations

import json
from pathlib import Path

import sqlalchemy as sa

from api_support import assert_error, auth, client_for
from cli_support import Cli
from integrity_support import raw
from memwarden import Memwarden, Settings
from memwarden.db import schema

C = schema.source_chunks


def _cli(settings: Settings) -> Cli:
    return Cli(settings.home, settings.database_url)


def _dangling(mw: Memwarden) -> int:
    """One memory citing a chunk that is then deleted behind memwarden's back."""
    mw.ingest_text("atlas", "plan.md", "# Plan\n\nLaunch in March from the northern pad.")
    chunk = next(h.id for h in mw.recall("northern pad", "atlas") if h.kind == "chunk")
    memory = mw.remember("atlas", "Launch from the northern pad", source_chunk_id=chunk).memory
    with raw(mw) as conn:
        conn.execute(sa.delete(C).where(C.c.id == chunk))
    return memory.id


def test_exit_codes_and_output(mw: Memwarden, settings: Settings) -> None:
    cli = _cli(settings)
    clean = cli.run("integrity", "check")
    assert "integrity: clean" in clean.stdout and "chunk_refs" in clean.stdout

    memory_id = _dangling(mw)
    found = cli.run("integrity", "check", code=1)
    assert "dangling_chunk_refs" in found.stdout and "integrity: 1 findings" in found.stdout

    body = json.loads(cli.run("integrity", "check", "--full", "--json", code=1).stdout)
    assert body["status"] == "findings" and body["full"] is True
    assert [(f["check"], f["count"], f["examples"]) for f in body["findings"]] == [
        ("dangling_chunk_refs", 1, [memory_id])
    ]
    assert {c["name"] for c in body["checks"]} >= {"chunk_refs", "ledger_chain", "audit_gaps"}


def test_fix_with_dry_run_then_fix(mw: Memwarden, settings: Settings) -> None:
    cli = _cli(settings)
    memory_id = _dangling(mw)
    planned = cli.run("integrity", "check", "--fix", "--dry-run", code=1)
    assert "repair plan (nothing written)" in planned.stdout and "planned" in planned.stdout
    assert mw.get(memory_id).source_chunk_id is not None

    fixed = cli.run("integrity", "check", "--fix", "--json")
    assert '"status": "clean"' in fixed.stdout
    assert mw.get(memory_id).source_chunk_id is None
    assert mw.history(memory_id)[-1].actor == "integrity-repair"

    history = cli.run("integrity", "history")
    assert "findings" in history.stdout and "clean" in history.stdout
    assert len(cli.json("integrity", "history", "--limit", "2")) == 2


def test_a_scan_that_cannot_run_exits_2(mw: Memwarden, settings: Settings, tmp_path: Path) -> None:
    nowhere = Cli(tmp_path / "empty-home")  # no database there: nothing to scan
    assert "not initialised" in nowhere.run("integrity", "check", code=2).stderr
    assert "--dry-run only goes with --fix" in _cli(settings).run(
        "integrity", "check", "--dry-run", code=2
    ).stderr.replace("\n", " ").replace("│", "")
    with raw(mw) as conn:
        conn.exec_driver_sql("DROP TABLE project_state")
    broken = _cli(settings).run("integrity", "check", code=2)
    assert "could not run every check (orphan_state, state_gaps, row_macs)" in broken.stderr


def test_admin_integrity_route(mw: Memwarden) -> None:
    _, admin = mw.create_key("ops", "admin")
    _, reader = mw.create_key("agent", "read")
    with client_for(mw) as client:
        empty = client.get("/admin/integrity", headers=auth(admin))
        assert empty.status_code == 200
        assert empty.json()["run"] is None and "no integrity scan" in empty.json()["message"]
        assert_error(client.get("/admin/integrity", headers=auth(reader)), 403)
        assert_error(client.get("/admin/integrity"), 401)

        memory_id = _dangling(mw)
        report = mw.integrity_check()
        body = client.get("/admin/integrity", headers=auth(admin)).json()
    run = body["run"]
    assert run["id"] == report.run.id and run["status"] == "findings"
    assert body["message"] == "1 findings"
    assert run["findings"] == [
        {
            "check": "dangling_chunk_refs",
            "severity": "warning",
            "count": 1,
            "examples": [memory_id],
            "message": "1 memories cite a source chunk that does not exist",
        }
    ]
    assert {c["name"] for c in run["checks"]} >= {"chunk_refs", "audit_gaps"}
