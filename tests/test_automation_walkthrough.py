"""The README walkthrough, end to end through the CLI: capture, extract, triage, the automatic
moves, and the audit history showing every step of each memory with its actor."""

from __future__ import annotations

import json

from extraction_support import cli_for, run_with_input
from memwarden import Settings
from memwarden.audit.actor import cli_actor


def steps(cli: object, memory_id: int) -> list[tuple[str, str]]:
    history = cli.json("audit", "history", str(memory_id))  # type: ignore[attr-defined]
    return [(r["action"], r["actor"]) for r in history]


def test_from_capture_to_active_memory_with_every_step_audited(settings: Settings) -> None:
    cli = cli_for(settings)
    # 1. capture: what an agent saw, one exchange at a time or in bulk.
    cli.run(
        "capture",
        "-p",
        "atlas",
        "--client",
        "claude-code",
        "--prompt",
        "I prefer tabs over spaces. We decided to use PostgreSQL 16.",
        "--response",
        "Noted: tabs, and PostgreSQL 16 for production.",
    )
    bulk = "".join(
        json.dumps({"project": "atlas", "prompt": p, "response": "ok", "client": "claude-code"})
        + "\n"
        for p in (
            "Reminder: I prefer tabs over spaces.",
            "i prefer tabs over spaces",
            "What's new?",
        )
    )
    assert (
        "captured 3 interaction(s)"
        in run_with_input(cli, bulk.encode(), "capture", "--jsonl", "-").stdout
    )
    captured = cli.json("audit", "recent", "--action", "captured")
    assert len(captured) == 4 and {r["actor"] for r in captured} == {cli_actor()}
    # 2. extract: candidates out, restatements reinforce.
    report = cli.json("extract")
    assert (report["created"], report["reinforced"]) == (2, 2)
    assert cli.json("extract")["interactions"] == 0
    tabs, postgres = report["created_ids"]
    # 3. triage: a person promotes one candidate.
    listing = cli.json("triage", "list")
    assert [i["id"] for i in listing["items"]] == [postgres, tabs]
    cli.run("triage", "promote", str(postgres), "--note", "confirmed in the design review")
    # 4. the automatic moves: the well-reinforced tabs candidate becomes active on its own.
    moved = cli.json("promote-reinforced", "--min-reinforcements", "2")
    assert [m["id"] for m in moved["moved"]] == [tabs]
    assert cli.json("expire-stale", "--days", "0")["count"] == 0  # nothing left to expire
    # 5. audit history: each step of each memory, with its actor.
    assert steps(cli, tabs) == [
        ("created", "extractor:rules"),
        ("reinforced", "reinforcement"),
        ("reinforced", "reinforcement"),
        ("auto_promoted", "auto-promote"),
    ]
    assert steps(cli, postgres) == [("created", "extractor:rules"), ("promoted", "human-triage")]
    created = cli.json("audit", "history", str(tabs))[0]
    assert created["note"] == "extracted from interaction 1 by rules 1.3"
    table = cli.run("audit", "history", str(tabs)).stdout
    assert "extractor:rules" in table and "auto-promote" in table
    assert cli.json("memory", "show", str(tabs))["status"] == "active"
    cli.run("audit", "verify")
