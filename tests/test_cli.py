"""The CLI's happy paths: every command group, its --json shape and its exit code 0."""

from __future__ import annotations

import re
import stat
from pathlib import Path

import pytest

from cli_support import Cli
from memwarden import Settings
from memwarden.audit.actor import cli_actor


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    runner = Cli(tmp_path / "home")
    runner.run("init")
    runner.run("project", "add", "atlas", "--description", "the rocket")
    return runner


def test_init_is_idempotent_and_reports_where_things_live(tmp_path: Path) -> None:
    runner = Cli(tmp_path / "home")
    first = runner.json("init")
    assert first["home"] == str(tmp_path / "home")
    assert first["database_url"].startswith("sqlite:///") and first["database_url"].endswith(
        "memwarden.db"
    )
    assert first["ledger_head"]["seq"] == 0 and first["projects"] == 0
    key = Path(first["ledger_key_file"])
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    key_bytes = key.read_bytes()
    runner.run("project", "add", "atlas")
    again = runner.json("init")
    assert again["projects"] == 1 and again["ledger_head"]["seq"] == 1
    assert key.read_bytes() == key_bytes, "a second init must never replace the ledger key"
    human = runner.run("init").stdout
    assert str(tmp_path / "home") in human and "memwarden.db" in human


def test_global_home_option_overrides_the_environment(tmp_path: Path) -> None:
    runner = Cli(tmp_path / "env-home")
    other = tmp_path / "flag-home"
    runner.run("--home", str(other), "init")
    assert (other / "memwarden.db").exists() and not (tmp_path / "env-home").exists()
    url = f"sqlite:///{tmp_path / 'elsewhere.db'}"
    info = runner.json("--database-url", url, "init")
    assert info["database_url"] == url and (tmp_path / "elsewhere.db").exists()


def test_projects(cli: Cli) -> None:
    created = cli.json("project", "add", "mars", "-d", "red planet")
    assert created["name"] == "mars" and created["description"] == "red planet"
    assert [p["name"] for p in cli.json("project", "list")] == ["atlas", "mars"]
    assert "mars" in cli.run("project", "list").stdout
    assert cli.json("project", "remove", "mars") == {"removed": "mars"}
    assert [p["name"] for p in cli.json("project", "list")] == ["atlas"]


def test_state_set_get_list_delete(cli: Cli) -> None:
    entry = cli.json("state", "set", "atlas", "schedule", "launch", "9 June", "--source", "plan")
    assert entry["value"] == "9 June" and entry["source"] == "plan"
    assert cli.run("state", "get", "atlas", "schedule", "launch").stdout.strip() == "9 June"
    cli.run("state", "set", "atlas", "team", "lead", "Ines")
    assert [e["key"] for e in cli.json("state", "list", "atlas")] == ["launch", "lead"]
    assert [e["key"] for e in cli.json("state", "list", "atlas", "--category", "team")] == ["lead"]
    deleted = cli.json("state", "delete", "atlas", "team", "lead")
    assert deleted["deleted"]["key"] == "lead"
    assert [e["key"] for e in cli.json("state", "list", "atlas")] == ["launch"]


def test_memory_add_and_restating_reinforces(cli: Cli) -> None:
    created = cli.json(
        "memory",
        "add",
        "--project",
        "atlas",
        "--type",
        "project",
        "--confidence",
        "0.9",
        "The launch window opens on 9 June",
    )
    assert created["reinforced"] is False
    memory = created["memory"]
    assert memory["status"] == "candidate" and memory["confidence"] == 0.9
    again = cli.run(
        "memory", "add", "-p", "atlas", "-t", "project", "the launch window opens on 9 JUNE."
    )
    assert f"reinforced memory {memory['id']}" in again.stdout
    shown = cli.json("memory", "show", str(memory["id"]))
    assert shown["reinforcement_count"] == 1
    active = cli.json(
        "memory", "add", "-p", "atlas", "-t", "knowledge", "--status", "active", "x y"
    )
    assert active["memory"]["status"] == "active"


def test_memory_lifecycle_commands(cli: Cli) -> None:
    ids = [
        cli.json("memory", "add", "-p", "atlas", "-t", "knowledge", f"fact number {n}")["memory"][
            "id"
        ]
        for n in range(4)
    ]
    assert cli.json("memory", "promote", str(ids[0]), "--note", "checked")["status"] == "active"
    assert cli.json("memory", "reject", str(ids[1]))["status"] == "rejected"
    assert cli.json("memory", "expire", str(ids[2]))["status"] == "expired"
    assert cli.json("memory", "reinforce", str(ids[3]))["reinforcement_count"] == 1
    assert cli.json("memory", "invalidate", str(ids[0]))["status"] == "invalid"
    updated = cli.json(
        "memory",
        "update",
        str(ids[3]),
        "--content",
        "fact three, revised",
        "--confidence",
        "0.3",
        "--type",
        "episodic",
    )
    assert (updated["content"], updated["confidence"], updated["type"]) == (
        "fact three, revised",
        0.3,
        "episodic",
    )
    out = cli.run("memory", "promote", str(ids[3])).stdout
    assert out.strip() == f"promoted memory {ids[3]}: now active"


def test_memory_supersede_by_content_and_by_id(cli: Cli) -> None:
    def active(text: str) -> int:
        result = cli.json(
            "memory", "add", "-p", "atlas", "-t", "project", "--status", "active", text
        )
        return int(result["memory"]["id"])

    old = active("static fire on 14 April")
    result = cli.json("memory", "supersede", str(old), "--content", "static fire on 21 April")
    assert result["superseded"]["status"] == "superseded"
    assert result["superseded"]["superseded_by"] == result["successor"]["id"]
    assert result["successor"]["content"] == "static fire on 21 April"
    first, second = active("engine count is four"), active("engine count is five")
    out = cli.run("memory", "supersede", str(first), "--by", str(second)).stdout
    assert out.strip() == f"memory {first} superseded by memory {second}"


def test_memory_list_filters_and_cursor(cli: Cli) -> None:
    cli.run("project", "add", "mars")
    for n in range(5):
        cli.run("memory", "add", "-p", "atlas", "-t", "knowledge", f"atlas fact {n}")
    cli.run("memory", "add", "-p", "mars", "-t", "episodic", "mars fact")
    everything = cli.json("memory", "list")
    assert len(everything) == 6 and everything == sorted(everything, key=lambda m: -m["id"])
    page = cli.json("memory", "list", "--project", "atlas", "--limit", "2")
    assert [m["content"] for m in page] == ["atlas fact 4", "atlas fact 3"]
    rest = cli.json("memory", "list", "-p", "atlas", "--after", str(page[-1]["id"]))
    assert [m["content"] for m in rest] == ["atlas fact 2", "atlas fact 1", "atlas fact 0"]
    assert [m["project"] for m in cli.json("memory", "list", "--type", "episodic")] == ["mars"]
    cli.run("memory", "promote", str(page[0]["id"]))
    assert [m["id"] for m in cli.json("memory", "list", "--status", "active")] == [page[0]["id"]]
    human = cli.run("memory", "list", "-p", "atlas").stdout
    assert "atlas fact 4" in human and "--after" in human


def test_user_text_is_never_rich_markup(cli: Cli) -> None:
    text = "[bold red]not markup[/bold red] and [link=x]y[/link]"
    cli.run("memory", "add", "-p", "atlas", "-t", "knowledge", text)
    assert "[bold red]not markup[/bold red]" in cli.run("memory", "list").stdout


def test_ingest_recall_and_context(cli: Cli, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "propulsion.md").write_text(
        "# Propulsion\n\nThe Petrel engine burns methane and oxygen.\n\n## Tests\n\n"
        "Static fire SF-02 ran for thirty seconds.\n"
    )
    (docs / "notes.txt").write_text("The range must be booked 45 days ahead.\n")
    report = cli.json("ingest", str(docs), "--project", "atlas")
    assert (report["created"], report["skipped"]) == (2, 0) and report["chunks"] >= 2
    assert cli.json("ingest", str(docs), "-p", "atlas")["unchanged"] == 2
    assert "2 unchanged" in cli.run("ingest", str(docs), "-p", "atlas").stdout
    cli.run(
        "memory",
        "add",
        "-p",
        "atlas",
        "-t",
        "knowledge",
        "--status",
        "active",
        "Petrel burns liquid methane",
    )
    cli.run("state", "set", "atlas", "vehicle", "engine", "Petrel", "--source", "propulsion.md")

    hits = cli.json("recall", "methane engine", "--project", "atlas", "-k", "5")
    assert {h["kind"] for h in hits} == {"memory", "chunk"}
    assert set(hits[0]) >= {"kind", "id", "score", "content", "project", "provenance"}
    chunk = next(h for h in hits if h["kind"] == "chunk")
    assert chunk["provenance"]["document"].endswith("propulsion.md")
    only = cli.json("recall", "methane", "--type", "knowledge", "--type", "project")
    assert only and all(h["kind"] == "memory" for h in only)
    assert len(cli.json("recall", "methane", "-k", "1")) == 1
    table = cli.run("recall", "methane engine", "-p", "atlas").stdout
    assert "score" in table and "provenance" in table and "Petrel" in table

    pack = cli.json("context", "what does the engine burn", "--project", "atlas")
    assert [i["kind"] for i in pack["items"]][0] == "state"
    assert {"query", "project", "budget", "used", "omitted", "items", "text"} <= set(pack)
    assert pack["used"] <= pack["budget"] == 4000
    rendered = cli.run("context", "what does the engine burn", "-p", "atlas", "--budget", "500")
    assert rendered.stdout.startswith("## Project state\n- vehicle/engine: Petrel")


def test_audit_trail_of_cli_changes_names_the_os_user(cli: Cli) -> None:
    memory_id = cli.json("memory", "add", "-p", "atlas", "-t", "knowledge", "first words")[
        "memory"
    ]["id"]
    cli.run("memory", "promote", str(memory_id), "--note", "triaged")
    cli.run("memory", "update", str(memory_id), "--content", "second words")
    history = cli.json("audit", "history", str(memory_id))
    assert [r["action"] for r in history] == ["created", "promoted", "updated"]
    assert {r["actor"] for r in history} == {cli_actor()} and cli_actor().startswith("cli:")
    assert history[1]["note"] == "triaged"
    recent = cli.json("audit", "recent", "--actor", cli_actor(), "--limit", "2")
    assert [r["seq"] for r in recent] == [history[2]["seq"], history[1]["seq"]]
    assert cli.json("audit", "recent", "--action", "promoted")[0]["entity_id"] == str(memory_id)
    assert cli.json("audit", "recent", "--project", "nowhere") == []
    table = cli.run("audit", "history", str(memory_id)).stdout
    assert "promoted" in table and "triaged" in table

    diff = cli.json(
        "audit",
        "diff",
        str(memory_id),
        "--from",
        str(history[0]["seq"]),
        "--to",
        str(history[2]["seq"]),
    )
    by_field = {c["field"]: c for c in diff}
    assert by_field["content"]["before"] == "first words"
    assert by_field["content"]["after"] == "second words"
    assert by_field["status"] == {"field": "status", "before": "candidate", "after": "active"}
    blame = {line["field"]: line for line in cli.json("audit", "blame", str(memory_id))}
    assert blame["content"]["seq"] == history[2]["seq"]
    assert blame["status"]["action"] == "promoted" and blame["status"]["actor"] == cli_actor()

    created_at = history[0]["ts"]  # e.g. 2025-05-01T12:00:00.123456Z
    then = cli.json("audit", "as-of", str(memory_id), "--at", created_at)
    assert then["snapshot"]["content"] == "first words"
    assert then["snapshot"]["status"] == "candidate"
    naive = created_at.rstrip("Z")  # a time without a zone is UTC
    assert cli.json("audit", "as-of", str(memory_id), "--at", naive)["snapshot"] == then["snapshot"]
    assert "first words" in cli.run("audit", "as-of", str(memory_id), "--at", created_at).stdout


def test_revert_and_erase(cli: Cli) -> None:
    memory_id = cli.json("memory", "add", "-p", "atlas", "-t", "knowledge", "old text")["memory"][
        "id"
    ]
    cli.run("memory", "update", str(memory_id), "--content", "new text")
    first_seq = cli.json("audit", "history", str(memory_id))[0]["seq"]
    reverted = cli.json(
        "memory", "revert", str(memory_id), "--to", str(first_seq), "--note", "oops"
    )
    assert reverted["content"] == "old text"
    assert cli.json("audit", "history", str(memory_id))[-1]["action"] == "reverted"
    erased = cli.json("memory", "erase", str(memory_id), "--reason", "personal data")
    assert erased["status"] == "erased" and erased["content"] == ""
    history = cli.json("audit", "history", str(memory_id))
    assert history[-1]["action"] == "erased" and history[-1]["note"] == "personal data"
    assert "old text" not in cli.run("audit", "history", str(memory_id), "--json").stdout
    assert cli.json("audit", "verify")["ok"] is True


def test_verify_and_anchor(cli: Cli) -> None:
    cli.run("memory", "add", "-p", "atlas", "-t", "knowledge", "something")
    anchor = cli.run("audit", "anchor").stdout.strip()
    assert re.fullmatch(r"\d+:[0-9a-f]{64}", anchor)
    as_json = cli.json("audit", "anchor")
    assert as_json["anchor"] == anchor and as_json["seq"] == int(anchor.split(":")[0])
    report = cli.json("audit", "verify", "--anchor", anchor)
    assert report["ok"] is True and report["rows_checked"] == as_json["seq"]
    assert report["checked_against"] == ["witness", "anchor"]
    assert cli.json("audit", "verify", "--from", "2")["rows_checked"] == as_json["seq"] - 1
    human = cli.run("audit", "verify").stdout
    assert f"{as_json['seq']} rows checked" in human and "rows/s" in human


def test_core_commands_on_both_engines(settings: Settings) -> None:
    cli = Cli(settings.home, settings.database_url)
    assert cli.json("init")["ledger_head"]["seq"] == 0
    cli.run("project", "add", "atlas")
    cli.run("state", "set", "atlas", "schedule", "launch", "9 June")
    added = cli.json(
        "memory",
        "add",
        "-p",
        "atlas",
        "-t",
        "project",
        "--status",
        "active",
        "Launch window opens 9 June",
    )
    memory_id = added["memory"]["id"]
    hits = cli.json("recall", "launch window", "-p", "atlas")
    assert hits[0]["id"] == memory_id and hits[0]["kind"] == "memory"
    pack = cli.json("context", "launch window", "-p", "atlas")
    assert [item["kind"] for item in pack["items"]] == ["state", "memory"]
    line = cli.error("memory", "reject", str(memory_id))
    assert line == (
        f"error: cannot reject memory {memory_id}: it is active (only a candidate memory can be "
        "rejected)"
    )
    cli.run("memory", "invalidate", str(memory_id), "--note", "window moved")
    history = cli.json("audit", "history", str(memory_id))
    assert [r["action"] for r in history] == ["created", "invalidated"]
    assert cli.json("audit", "verify")["rows_checked"] == 4


def test_demo_initialises_a_fresh_home_by_itself(tmp_path: Path) -> None:
    cli = Cli(tmp_path / "fresh")
    out = cli.run("demo").stdout
    assert "project atlas-rocket: created" in out and "ledger ok" in out
    assert "## Project state" in out and "Petrel-7" in out
    assert [p["name"] for p in cli.json("project", "list")] == ["atlas-rocket"]
    assert len(cli.json("memory", "list", "--status", "active")) == 4
