"""Helpers the operation-log tests share: a memwarden with the log configured, and its rows."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from memwarden import Memwarden, Settings
from memwarden.db import schema

CONTENT = "Zephyr telemetry uplink rotates every ninety seconds"
UPDATED = "Zephyr telemetry uplink rotates every forty seconds"
SUCCESSOR = "Zephyr telemetry uplink now rotates hourly"
QUERY = "zephyr telemetry uplink"
STATE_VALUE = "quartz-harbour-relay-7"
DOC_TEXT = "# Uplink\n\nThe kestrel antenna array points north during the Zephyr burn."
REASON = "privacy request from the owner of marigold notes"
# Each a word of the texts above that nothing else in the log could contain.
MARKERS = ("Zephyr", "zephyr", "ninety", "forty", "hourly", "quartz", "kestrel", "marigold")


def configured(settings: Settings, **oplog: Any) -> Settings:
    return settings.model_copy(update={f"oplog_{key}": value for key, value in oplog.items()})


def open_logged(settings: Settings, **oplog: Any) -> Memwarden:
    """A fresh, initialised memwarden whose operation log is configured by ``oplog``."""
    return Memwarden.init(configured(settings, **oplog))


def rows(mw: Memwarden) -> list[Any]:
    """Every stored operation row, oldest first (after writing what is queued)."""
    assert mw.oplog.flush(10)
    with mw.store.engine.connect() as conn:
        return list(
            conn.execute(sa.select(schema.operation_log).order_by(schema.operation_log.c.id))
        )


# The actions ``exercise`` calls.
EXERCISED = frozenset(
    {
        "add_project",
        "remove_project",
        "list_projects",
        "set_state",
        "get_state",
        "list_state",
        "delete_state",
        "remember",
        "get",
        "list_memories",
        "update",
        "promote",
        "reinforce",
        "history",
        "as_of",
        "diff",
        "blame",
        "revert",
        "supersede",
        "reject",
        "auto_promote",
        "expire",
        "invalidate",
        "recent",
        "ingest",
        "ingest_text",
        "recall",
        "context",
        "verify",
        "anchor",
        "reset_witness",
        "erase",
    }
)


def exercise(mw: Memwarden, tmp_path: Path) -> None:
    """Call every logged operation of the facade at least once, with text worth hiding."""
    mw.add_project("atlas")
    mw.add_project("scratch", "a project to remove")
    mw.remove_project("scratch")
    mw.list_projects()
    mw.set_state("atlas", "deploy", "relay", STATE_VALUE, source="runbook")
    mw.get_state("atlas", "deploy", "relay")
    mw.list_state("atlas")
    mw.delete_state("atlas", "deploy", "relay")
    first = mw.remember("atlas", CONTENT, "project", note="heard in standup").memory
    mw.get(first.id)
    mw.list_memories(project="atlas")
    mw.promote(first.id)
    mw.update(first.id, content=UPDATED)
    mw.reinforce(first.id)
    history = mw.history(first.id)
    mw.as_of(first.id, datetime.now(UTC))
    mw.diff(first.id, history[0].seq, history[1].seq)
    mw.blame(first.id)
    mw.revert(first.id, history[1].seq)  # back to the version as promoted
    mw.supersede(first.id, content=SUCCESSOR)
    for verb in ("reject", "auto_promote", "expire"):
        candidate = mw.remember("atlas", f"{CONTENT} ({verb})").memory
        getattr(mw, verb)(candidate.id)
    active = mw.remember("atlas", f"{CONTENT} (invalidate)", status="active").memory
    mw.invalidate(active.id)
    mw.recent(limit=5)
    doc = tmp_path / "uplink.md"
    doc.write_text(DOC_TEXT, encoding="utf-8")
    mw.ingest([doc], "atlas")
    mw.ingest_text("atlas", "notes://uplink", DOC_TEXT)
    mw.recall(QUERY, "atlas")
    mw.context(QUERY, "atlas")
    mw.verify()
    mw.anchor()
    mw.reset_witness()
    mw.erase(active.id, REASON)
