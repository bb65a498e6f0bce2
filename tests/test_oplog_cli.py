"""`memwarden oplog list / stats / sweep`, and the CLI's operations logged as transport cli."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from cli_support import Cli, run_script
from memwarden import Settings
from memwarden.audit.actor import cli_actor
from memwarden.db import schema
from memwarden.db.engine import make_engine


@pytest.fixture
def cli(settings: Settings) -> Cli:
    runner = Cli(settings.home, settings.database_url, MEMWARDEN_OPLOG_ACTIONS="*")
    runner.run("init", env={"MEMWARDEN_OPLOG_ACTIONS": ""})  # init reads the head: not asked here
    runner.run("project", "add", "atlas")
    runner.run(
        "memory",
        "add",
        "The nozzle is cooled by kerosene",
        "-p",
        "atlas",
        "-t",
        "project",
        "--status",
        "active",
    )
    runner.run("recall", "nozzle kerosene", "-p", "atlas")
    runner.run("recall", "nozzle", "-p", "atlas")
    runner.run("memory", "promote", "999", code=1)
    return runner


def test_cli_operations_are_listed_with_transport_and_actor(cli: Cli) -> None:
    listed = cli.json("oplog", "list")
    assert [item["action"] for item in listed] == [
        "promote",
        "recall",
        "recall",
        "remember",
        "add_project",
    ]
    for item in listed:
        assert item["transport"] == "cli" and item["actor"] == cli_actor()
        assert item["duration_ms"] >= 0
    assert listed[0]["error"] == "NotFoundError"
    assert listed[1]["request"]["query"] == {"chars": len("nozzle")}
    assert "kerosene" not in str(listed)
    only = cli.json("oplog", "list", "--action", "recall", "--limit", "1")
    assert len(only) == 1 and only[0]["id"] == listed[1]["id"]
    assert cli.json("oplog", "list", "--transport", "http") == []
    assert len(cli.json("oplog", "list", "--project", "atlas")) == 4
    assert len(cli.json("oplog", "list", "--since", "1h")) == 5
    assert cli.json("oplog", "list", "--since", "2999-01-01T00:00:00") == []
    table = cli.run("oplog", "list").stdout
    assert "recall" in table and "NotFoundError" in table


def test_stats_count_errors_and_percentiles_per_action(cli: Cli) -> None:
    stats = {item["action"]: item for item in cli.json("oplog", "stats")}
    assert set(stats) == {"promote", "recall", "remember", "add_project"}
    assert (stats["recall"]["count"], stats["recall"]["errors"]) == (2, 0)
    assert (stats["promote"]["count"], stats["promote"]["errors"]) == (1, 1)
    for item in stats.values():
        assert 0 <= item["p50_ms"] <= item["p95_ms"] <= item["max_ms"]
    assert cli.json("oplog", "stats", "--since", "2999-01-01") == []
    table = cli.run("oplog", "stats").stdout
    assert "p95 ms" in table and "recall" in table


def test_sweep_follows_the_retention_and_says_when_it_is_off(cli: Cli, settings: Settings) -> None:
    assert "retention is off" in cli.run("oplog", "sweep").stdout
    assert cli.json("oplog", "sweep")["off"] is True
    engine = make_engine(settings)
    old = datetime.now(UTC) - timedelta(days=40)
    with engine.begin() as conn:
        conn.execute(
            sa.update(schema.operation_log)
            .where(schema.operation_log.c.action == "recall")
            .values(started_at=old, ended_at=old)
        )
    engine.dispose()
    swept = json.loads(
        cli.run("oplog", "sweep", "--json", env={"MEMWARDEN_OPLOG_RETENTION_DAYS": "30"}).stdout
    )
    assert (swept["deleted"], swept["batches"]) == (2, 1)
    assert "deleted 0 operation rows" in cli.run("oplog", "sweep", "--days", "30").stdout
    assert {item["action"] for item in cli.json("oplog", "list")} == {
        "promote",
        "remember",
        "add_project",
    }


def test_bad_filters_are_one_line_errors(cli: Cli) -> None:
    assert "unknown transport 'pigeon'" in cli.error("oplog", "list", "--transport", "pigeon")
    assert "malformed --since" in cli.error("oplog", "stats", "--since", "yesterday-ish")
    assert "limit" in cli.error("oplog", "list", "--limit", "0")
    cli.error("oplog", "sweep", "--days", "-3", code=2)


def test_with_the_log_off_the_commands_say_how_to_turn_it_on(tmp_path: Path) -> None:
    runner = Cli(tmp_path / "home")
    runner.run("init")
    runner.run("project", "add", "atlas")
    assert "MEMWARDEN_OPLOG_ACTIONS" in runner.run("oplog", "stats").stdout
    assert runner.json("oplog", "list") == []


def test_the_readme_example(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = {"MEMWARDEN_OPLOG_ACTIONS": "recall,context,remember"}
    runner = Cli(home, **env)
    runner.run("init")
    runner.run("project", "add", "atlas")
    runner.run(
        "memory",
        "add",
        "Launch window opens in March",
        "-p",
        "atlas",
        "-t",
        "project",
        "--status",
        "active",
    )
    runner.run("recall", "launch window", "-p", "atlas")
    runner.run("context", "launch window", "-p", "atlas")
    # The installed console script reads what the commands logged.
    stats = run_script("oplog", "stats", home=home, **env)
    assert stats.returncode == 0, stats.stderr
    for action in ("recall", "context", "remember"):
        assert action in stats.stdout
    assert "add_project" not in stats.stdout  # not in the allowlist


def test_unknown_actions_are_shown_to_the_user(settings: Settings) -> None:
    """A typo in MEMWARDEN_OPLOG_ACTIONS logs nothing: every command says so on stderr, once,
    with the closest known name; stdout stays clean for --json."""
    cli = Cli(settings.home, settings.database_url, MEMWARDEN_OPLOG_ACTIONS="recall,recal")
    cli.run("init")
    done = cli.run("project", "list", "--json")
    warnings = [line for line in done.stderr.splitlines() if line.startswith("warning: ")]
    assert len(warnings) == 1
    assert warnings[0].startswith(
        "warning: MEMWARDEN_OPLOG_ACTIONS names 1 action(s) no operation has, which log "
        "nothing: recal (did you mean recall?). Known actions: "
    )
    assert json.loads(done.stdout) == []
    fine = Cli(settings.home, settings.database_url, MEMWARDEN_OPLOG_ACTIONS="recall")
    assert fine.run("project", "list").stderr == ""
