"""Migrations an operator runs: every revision down and up again with data in every table,
`memwarden db current|history|upgrade|downgrade`, plain `alembic`, and `init` on an older store.

The revisions are discovered from the migrations directory, never listed: a new one is covered
the moment it lands.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

import memwarden
from alert_support import closed_port
from cli_support import Cli
from integrity_support import raw
from memwarden import Memwarden, Settings
from memwarden.db import migrate, schema
from memwarden.db.store import Store
from memwarden.nightly import run_nightly
from memwarden.observability.alerts import emit_alert

# Tables that are empty between runs by design: the SQLite run lock is a row only while a
# nightly run holds it (PostgreSQL holds an advisory lock instead).
EMPTY_BY_DESIGN = {"nightly_lock"}
# Every table memwarden had when this test was written: each must hold rows before the round
# trip. (Tables added later are round-tripped too; their own tests fill them.)
KNOWN_TABLES = {
    "memwarden_meta",
    "projects",
    "project_state",
    "documents",
    "source_chunks",
    "interactions",
    "memories",
    "ledger",
    "ledger_payloads",
    "api_keys",
    "alerts",
    "alert_deliveries",
    "alert_attempts",
    "alert_emits",
    "memory_origins",
    "extraction_watermarks",
    "operation_log",
    "harness_runs",
    "nightly_runs",
    "nightly_steps",
    "integrity_runs",
    "integrity_findings",
}


def row_counts(store: Store) -> dict[str, int]:
    with store.engine.connect() as conn:
        return {
            table.name: int(
                conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
            )
            for table in schema.metadata.sorted_tables
            if sa.inspect(conn).has_table(table.name)
        }


def populate(settings: Settings) -> Settings:
    """A store with rows in every table, made through memwarden's own paths."""
    fixtures = settings.home.parent / "cases.json"
    fixtures.write_text(
        '{"version": 1, "projects": {"atlas": [{"query": "launch", "expect_text": ["April"]}]}}',
        encoding="utf-8",
    )
    settings = settings.model_copy(
        update={
            "oplog_actions": "*",
            "alert_webhook": f"http://127.0.0.1:{closed_port()}/hook",
            "alert_webhook_attempts": 1,
            "alert_webhook_backoff": 0.0,
            "alert_webhook_timeout": 1.0,
            "harness_fixtures": fixtures,
        }
    )
    with Memwarden.init(settings) as mw:
        mw.add_project("atlas")
        mw.add_project("gone")
        mw.set_state("atlas", "schedule", "launch", "March")
        mw.set_state("gone", "schedule", "launch", "never")
        mw.ingest_text("atlas", "plan.md", "# Plan\n\nThe launch window opens in March.")
        chunk = next(h for h in mw.recall("launch window", "atlas") if h.kind == "chunk")
        old = mw.remember("atlas", "Launch in March", source_chunk_id=chunk.id, status="active")
        mw.supersede(old.memory.id, content="Launch in April")
        mw.create_key("alice", "write")
        mw.capture("atlas", "I prefer tabs over spaces.", "Noted.")
        mw.extract()
        emit_alert("warning", "Round trip", "an alert that cannot be delivered", {"n": 1})
        run_nightly(mw)
        mw.alerts.drain(10.0)
    # Drift for the integrity scan to find: state whose project is gone.
    store = Store(settings)
    try:
        with Memwarden(settings) as mw, raw(mw) as conn:
            conn.execute(sa.delete(schema.projects).where(schema.projects.c.name == "gone"))
        with Memwarden(settings) as mw:
            assert mw.integrity_check().status != "clean"
        counts = row_counts(store)
    finally:
        store.dispose()
    empty = {name for name, rows in counts.items() if rows == 0} - EMPTY_BY_DESIGN
    assert not empty & KNOWN_TABLES, f"tables left empty: {sorted(empty & KNOWN_TABLES)}"
    return settings


def test_every_migration_down_and_up_with_data_in_every_table(settings: Settings) -> None:
    settings = populate(settings)
    with Memwarden(settings) as mw:
        head = mw.anchor()
    store = Store(settings)
    try:
        revisions = [r for r in migrate.revisions() if r.down_revision is not None]
        assert len(revisions) >= 8
        for revision in reversed(revisions):  # newest first
            before = row_counts(store)
            # ``X@-1`` takes one step off the head of X's branch: a revision that others stand
            # on (0002_alerts under 0012_alert_delivery) goes after them, one step at a time.
            for _ in range(len(revisions)):
                migrate.downgrade(store, f"{revision.revision}@-1")
                if revision.revision not in migrate.current_revisions(store):
                    break
            assert revision.revision not in migrate.current_revisions(store)
            during = row_counts(store)  # the tables that outlive the downgrade, and their rows
            assert {name: during[name] for name in migrate.LEDGER_TABLES} == {
                name: before[name] for name in migrate.LEDGER_TABLES
            }, revision.revision
            migrate.upgrade(store)
            assert migrate.current_revisions(store) == migrate.head_revisions()
            after = row_counts(store)
            # What the revision owns may go (its tables); everything else is kept, row for row.
            assert {name: after[name] for name in during} == during, revision.revision
            assert set(after) == set(before)
    finally:
        store.dispose()
    with Memwarden(settings) as mw:
        report = mw.verify()
        assert report.ok, report.reason
        assert report.head == head
        assert mw.get_state("atlas", "schedule", "launch").value == "March"
        assert [m.content for m in mw.list_memories(status="active")] == ["Launch in April"]

    # Down to base: planned (run and rolled back: nothing changes), then done: nothing left;
    # up again and `init`: a working, verifiable store.
    store = Store(settings)
    try:
        counts = row_counts(store)
        newest = revisions[-1].revision
        plan = migrate.plan_downgrade(store, f"{newest}@-1")
        assert plan.undone == [newest] and not plan.drops_ledger
        plan = migrate.plan_downgrade(store, "base")
        assert row_counts(store) == counts
        assert plan.rows_lost == {name: rows for name, rows in counts.items() if rows}
        assert plan.drops_ledger and plan.rows_lost["ledger"] == head.seq
        assert plan.undone[-1] == "0001"
        migrate.downgrade(store, "base")
        assert set(sa.inspect(store.engine).get_table_names()) <= {"alembic_version"}
        migrate.upgrade(store)
    finally:
        store.dispose()
    with Memwarden.init(settings) as mw:
        mw.add_project("atlas")
        mw.remember("atlas", "After the round trip")
        assert mw.verify().ok


def test_db_commands(settings: Settings) -> None:
    cli = Cli(settings.home, settings.database_url)
    assert "not initialised" in cli.run("db", "current", code=1).stdout
    cli.run("init")
    cli.run("project", "add", "atlas")
    cli.run("memory", "add", "--project", "atlas", "--type", "project", "Launch in March")
    assert "the schema is current" in cli.run("db", "current").stdout
    status = cli.json("db", "current")
    assert status["state"] == "current" and set(status["heads"]) == migrate.head_revisions()

    history = cli.json("db", "history")
    assert [r["id"] for r in history][0] == "0001"
    assert {r["id"] for r in history} == migrate.known_revisions()
    assert all(r["applied"] for r in history)
    text = cli.run("db", "history").stdout
    assert "* 0001 " in text and "(head)" in text

    # One feature's revision down: confirmation asked (and refused: nothing changes) ...
    newest = next(
        r for r in reversed(migrate.revisions()) if r.revision in migrate.head_revisions()
    )
    target = f"{newest.revision}@-1"
    declined = cli.run("db", "downgrade", target, code=1)
    assert "undoes: " + newest.revision in declined.stdout
    assert "cancelled; nothing changed" in declined.stderr
    assert cli.json("db", "current")["state"] == "current"
    # ... and with --yes it runs; the store refuses to serve until upgraded.
    done = cli.run("db", "downgrade", target, "--yes")
    assert "downgraded the schema" in done.stdout
    assert cli.run("db", "current", code=1).stdout.count(newest.revision) >= 1
    assert "memwarden db upgrade" in cli.error("memory", "list")
    upgraded = cli.run("db", "upgrade")
    assert upgraded.stdout.startswith("upgraded the schema from ")
    assert "nothing to do" in cli.run("db", "upgrade").stdout

    # Down to base would drop the ledger: refused without --force (even with --yes), with a hint.
    shown = cli.run("db", "downgrade", "base", "--yes", code=1)
    assert "drops:  ledger (2 rows), ledger_payloads (2 rows), memories (1 rows)" in shown.stdout
    refused = shown.stderr.strip()
    assert refused.startswith("error: refusing") and len(refused.splitlines()) == 1
    assert "drops the ledger's rows (2 in ledger, 2 in ledger_payloads)" in refused
    assert "Back up first" in refused and "--force" in refused
    assert cli.json("db", "current")["state"] == "current"
    assert cli.json("audit", "verify")["ok"] is True

    # A revision that does not exist: one clear line.
    assert "no such schema revision 'nope'" in cli.error("db", "downgrade", "nope", "--yes")

    forced = cli.run("db", "downgrade", "base", "--yes", "--force")
    assert "to (none)" in forced.stdout
    assert "not initialised" in cli.run("db", "current", code=1).stdout


def test_init_upgrades_an_older_store_and_says_so(settings: Settings) -> None:
    cli = Cli(settings.home, settings.database_url)
    cli.run("init")
    cli.run("project", "add", "atlas")
    newest = next(
        r for r in reversed(migrate.revisions()) if r.revision in migrate.head_revisions()
    )
    cli.run("db", "downgrade", f"{newest.revision}@-1", "--yes")
    out = cli.run("init").stdout
    assert out.startswith("upgraded the schema from ")
    assert newest.revision in out.splitlines()[0].split(" to ")[1]
    info = cli.json("init")
    assert (
        info["schema"]["upgraded"] is False and info["schema"]["before"] == info["schema"]["after"]
    )
    assert cli.json("project", "list")[0]["name"] == "atlas"


def test_plain_alembic_upgrades_with_the_shipped_ini(settings: Settings, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEMWARDEN_")}
    env["MEMWARDEN_HOME"] = str(settings.home)
    # The memwarden under test (a worktree's sources, say), wherever the command runs from.
    source = str(Path(memwarden.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join([source, *filter(None, [env.get("PYTHONPATH")])])
    if settings.database_url:
        env["MEMWARDEN_DATABASE_URL"] = settings.database_url
    assert migrate.ALEMBIC_INI.is_file()
    done = subprocess.run(
        [sys.executable, "-m", "alembic", "-c", str(migrate.ALEMBIC_INI), "upgrade", "heads"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=tmp_path,  # anywhere: the ini finds its migrations by its own location
    )
    assert done.returncode == 0, done.stderr
    assert "Running upgrade  -> 0001" in done.stderr
    store = Store(settings)
    try:
        assert migrate.current_revisions(store) == migrate.head_revisions()
    finally:
        store.dispose()
    # The schema is memwarden's: `init` adds the key and witness, and the store works.
    cli = Cli(settings.home, settings.database_url)
    assert "upgraded" not in cli.run("init").stdout
    cli.run("project", "add", "atlas")
    assert cli.json("audit", "verify")["ok"] is True


@pytest.mark.parametrize("engine_name", ["sqlite"])
def test_a_pg_schema_on_sqlite_is_refused(settings: Settings) -> None:
    """MEMWARDEN_PG_SCHEMA on a SQLite store is a clear refusal, not a silent no-op."""
    cli = Cli(settings.home, None, MEMWARDEN_PG_SCHEMA="tenant_a")
    assert "applies to PostgreSQL only" in cli.error("db", "current")
