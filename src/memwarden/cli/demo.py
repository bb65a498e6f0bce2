"""`memwarden demo`: what `make run` shows until the HTTP server exists.

On the configured database it creates project ``atlas-rocket`` (once), ingests the bundled
sample corpus (unchanged files change nothing), keeps a few facts and memories, then shows a
recall and a context pack. Running it again is safe: restated memories are reinforced.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

import typer

from memwarden.audit.verify import VerifyReport
from memwarden.cli import render
from memwarden.cli.common import JsonFlag, console, emit_json, fail, safe_url, say, session
from memwarden.cli.ingest import summary
from memwarden.core.models import CreateResult
from memwarden.core.service import Memwarden
from memwarden.errors import NotFoundError

PROJECT = "atlas-rocket"
STATE = (
    (
        "schedule",
        "launch_window",
        "9-23 June, daily at 10:15 UTC; backup 7-21 July",
        "launch-plan.md",
    ),
    ("vehicle", "engine", "Petrel-7, liquid methane and liquid oxygen", "decisions.md D-003"),
    ("team", "lead", "Ines Okafor", "overview.md"),
)
# (type, status, content, a query that finds the chunk it comes from, or None)
MEMORIES = (
    (
        "project",
        "active",
        "The Pathfinder launch window opens on 9 June and closes on 23 June.",
        "primary window opens",
    ),
    (
        "knowledge",
        "active",
        "Petrel-7 burns liquid methane with liquid oxygen at a mixture ratio of 3.4.",
        "mixture ratio",
    ),
    (
        "preference",
        "active",
        "Ines wants every decision written in the decision log before it counts as made.",
        None,
    ),
    (
        "episodic",
        "active",
        "Static fire SF-02 showed a 4% chamber pressure oscillation, fixed with a feed-line damper.",
        "pressure oscillation",
    ),
    (
        "knowledge",
        "candidate",
        "The main oxidiser valve actuator overheats in firings longer than 120 seconds.",
        None,
    ),
)
RECALL_QUERY = "what does the Petrel-7 engine burn"
CONTEXT_QUERY = "when does Pathfinder launch and what has to pass first"


def _ensure_project(mw: Memwarden) -> bool:
    if any(p.name == PROJECT for p in mw.list_projects()):
        return False
    mw.add_project(PROJECT, "A fictional small-satellite launcher (memwarden's sample corpus)")
    return True


def _ensure_state(mw: Memwarden) -> int:
    changed = 0
    for category, key, value, source in STATE:
        try:
            current = mw.get_state(PROJECT, category, key)
        except NotFoundError:
            current = None
        if current is None or (current.value, current.source) != (value, source):
            mw.set_state(PROJECT, category, key, value, source)
            changed += 1
    return changed


def _source_chunk(mw: Memwarden, query: str | None) -> int | None:
    if query is None:
        return None
    chunks = [h for h in mw.recall(query, PROJECT, k=5) if h.kind == "chunk"]
    return chunks[0].id if chunks else None


def _run(mw: Memwarden) -> dict[str, Any]:
    created = _ensure_project(mw)
    with resources.as_file(resources.files("memwarden") / "sample" / PROJECT) as folder:
        report = mw.ingest([folder], PROJECT)
    state_changed = _ensure_state(mw)
    kept = [
        mw.remember(
            PROJECT,
            content,
            type_,
            0.8,
            status=status,
            source_chunk_id=_source_chunk(mw, query),
            note="memwarden demo",
        )
        for type_, status, content, query in MEMORIES
    ]
    return {
        "project": PROJECT,
        "project_created": created,
        "database_url": safe_url(mw.settings.resolved_database_url),
        "ingest": report,
        "state_changed": state_changed,
        "memories": kept,
        "recall": {"query": RECALL_QUERY, "hits": mw.recall(RECALL_QUERY, PROJECT, k=6)},
        "context": mw.context(CONTEXT_QUERY, PROJECT, budget=1800),
        "ledger": mw.verify(),
    }


def demo(ctx: typer.Context, json_out: JsonFlag = False) -> None:
    """Set up project atlas-rocket from the bundled sample, then recall and build a context pack."""
    with session(ctx, initialise=True) as mw:
        result = _run(mw)
    ledger: VerifyReport = result["ledger"]
    if json_out:
        emit_json(result)
    else:
        _show(result)
    if not ledger.ok:
        fail(f"ledger broken at row {ledger.first_bad_seq}: {ledger.reason}")


def _show(result: dict[str, Any]) -> None:
    out = console()
    out.rule(f"memwarden demo: project {PROJECT}")
    say(f"database: {result['database_url']}")
    say(f"project {PROJECT}: {'created' if result['project_created'] else 'already there'}")
    say(summary(result["ingest"], PROJECT))
    say(f"project state: {len(STATE)} facts ({result['state_changed']} changed)")
    kept: list[CreateResult] = result["memories"]
    for item in kept:
        memory = item.memory
        verb = "reinforced" if item.reinforced else "created"
        say(
            f"  {verb} memory {memory.id} ({memory.status}, {memory.type}): "
            f"{render.preview(memory.content, 60)}"
        )
    out.rule(f"recall: {RECALL_QUERY!r}")
    render.hits(result["recall"]["hits"])
    out.rule(f"context pack: {CONTEXT_QUERY!r}")
    say(result["context"].render())
    ledger: VerifyReport = result["ledger"]
    if ledger.ok:
        out.rule("ledger")
        say(f"ledger ok: {ledger.rows_checked} rows verified against the witness")
        say(
            "next: memwarden memory list --project atlas-rocket | "
            f"memwarden audit history {kept[0].memory.id} | memwarden audit recent"
        )
