"""Erase reaches every copy of the text and says truthfully when the disk holds none: the
sources a memory came from, the operation log, alerts, the database files (SQLite's file and
WAL, PostgreSQL's table files), with a receipt that is ``scrubbed`` or ``pending``. Both
engines."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from core_support import index_matches
from erase_support import disk_hits
from ledger_support import ledger_rows
from memwarden import Memwarden
from memwarden.audit.actor import acting_as
from memwarden.db import schema
from memwarden.errors import InvalidInputError, NotFoundError
from oplog_support import configured

WORD = "quixoticpangolin"
PROMPT = f"I prefer {WORD} tea over coffee. What time is it?"


def extracted(mw: Memwarden) -> tuple[int, int]:
    """A memory extracted from a captured interaction: (memory id, interaction id)."""
    interaction = mw.capture("atlas", PROMPT, f"Noted: {WORD} tea.")
    mw.extract()
    with mw.store.engine.connect() as conn:
        memory_id = conn.execute(
            sa.select(schema.memory_origins.c.memory_id).where(
                schema.memory_origins.c.interaction_id == interaction.id
            )
        ).scalar_one()
    assert WORD in mw.get(int(memory_id)).content.lower()
    return int(memory_id), interaction.id


def test_erase_scrubs_the_memory_and_its_source_from_disk(mw: Memwarden) -> None:
    memory_id, interaction_id = extracted(mw)
    mw.remember("atlas", "An unrelated fact about the rover", status="active")
    assert disk_hits(mw, WORD), "the check must be able to fail"
    with acting_as("dpo"):
        receipt = mw.erase(memory_id, "GDPR request #7", wait=20)
    assert receipt.status == "scrubbed" and receipt.pending == []
    assert receipt.erased.memories == [memory_id]
    assert receipt.erased.interactions == [interaction_id]
    got = mw.get_interaction(interaction_id)
    assert (got.prompt, got.response) == ("", "")
    assert disk_hits(mw, WORD, "tea over coffee") == []
    # The ledger: the interaction's capture payload (digests of its text) is blanked, both
    # erasures and the scrub are recorded, and the chain verifies.
    rows = [r for r in ledger_rows(mw) if r["entity_id"] == str(interaction_id)]
    assert [r["action"] for r in rows if r["entity_type"] == "interaction"] == [
        "captured",
        "erased",
    ]
    status = mw.erase_status(memory_id=memory_id)
    assert status.status == "scrubbed" and status.actor == "dpo"
    assert status.to_dict()["erased"]["interactions"] == [interaction_id]
    report = mw.verify()
    assert report.ok, report.reason
    if not mw.store.is_sqlite:
        # The scrub's lock timeout never leaks into the pool's connections (a writer there
        # would give up waiting after half a second): RESET goes back to the store's own.
        pooled = mw.store.engine.pool.checkedin()  # type: ignore[attr-defined]
        held = [mw.store.engine.connect() for _ in range(max(pooled, 1))]
        try:
            assert {c.exec_driver_sql("SHOW lock_timeout").scalar_one() for c in held} == {"30s"}
        finally:
            for conn in held:
                conn.close()


def test_copies_the_engine_made_before_the_erase_are_gone_too(mw: Memwarden) -> None:
    """Ordinary writes after a memory was made move its text around (page splits; a leaf that
    becomes an interior page keeps the bytes of its old cells): with SQLite's secure_delete
    on only in the erase's transaction, those copies stayed in the file while the receipt
    said none was left (found by an attack session). PostgreSQL's rewrite covers its own."""
    secret = "Ines phone is SECRET-4242-XYZ"
    memory = mw.remember("atlas", secret).memory
    filler = "".join(chr(0x41 + (i * 7919) % 26) for i in range(400))
    for n in range(60):  # enough rows after it to split the pages it sits on, many times
        mw.capture("atlas", f"filler {n} {filler}", "ok")
    receipt = mw.erase(memory.id, "personal data", wait=20)
    assert receipt.status == "scrubbed"
    assert disk_hits(mw, "SECRET-4242") == []


@pytest.mark.parametrize("sources", ["span", "keep"])
def test_sources_span_cuts_only_the_memory_and_keep_keeps_it(mw: Memwarden, sources: str) -> None:
    memory_id, interaction_id = extracted(mw)
    content = mw.get(memory_id).content
    receipt = mw.erase(memory_id, "privacy", sources=sources, wait=20)
    got = mw.get_interaction(interaction_id)
    if sources == "keep":
        assert receipt.erased.interactions == []
        assert got.prompt == PROMPT
    else:
        assert receipt.erased.interactions == [interaction_id]
        assert content.lower() not in got.prompt.lower()
        assert "[erased]" in got.prompt and "What time is it?" in got.prompt
    assert mw.verify().ok


def test_oplog_raw_payloads_and_alert_contexts_lose_the_text(settings: object) -> None:
    from memwarden import Settings
    from memwarden.observability.alerts import emit_alert

    assert isinstance(settings, Settings)
    with Memwarden.init(configured(settings, actions="*", raw=True)) as mw:
        mw.add_project("atlas")
        memory = mw.remember("atlas", f"The vault word is {WORD}", status="active").memory
        emit_alert("warning", "suspicious memory", f"memory said: the vault word is {WORD}", {})
        assert mw.alerts.flush(10) and mw.oplog.flush(10)
        with mw.store.engine.connect() as conn:
            quoted = conn.execute(sa.select(schema.alerts.c.message)).scalars().all()
        assert any(WORD in m for m in quoted), "the alert must be there to be scrubbed"
        receipt = mw.erase(memory.id, "privacy", wait=20)
        assert receipt.erased.oplog_rows, "the raw remember row held the text"
        assert len(receipt.erased.alerts) == 1
        assert mw.oplog.flush(10)
        with mw.store.engine.connect() as conn:
            for table in (schema.operation_log, schema.alerts):
                for row in conn.execute(sa.select(table)):
                    assert WORD not in json.dumps([str(v) for v in row]).lower()
        assert receipt.status == "scrubbed"


def test_a_reader_leaves_the_receipt_pending_without_stalling_writers(mw: Memwarden) -> None:
    memory = mw.remember("atlas", f"The locker code is {WORD}", status="active").memory
    reader = mw.store.engine.connect()
    if not mw.store.is_sqlite:
        reader = reader.execution_options(isolation_level="REPEATABLE READ")
    transaction = reader.begin()
    reader.execute(sa.select(schema.memories.c.id)).all()  # holds a snapshot
    try:
        started = time.monotonic()
        receipt = mw.erase(memory.id, "privacy")
        writes = []
        thread = threading.Thread(
            target=lambda: writes.append(mw.remember("atlas", "Written meanwhile").memory.id)
        )
        thread.start()
        thread.join(10)
        assert time.monotonic() - started < 5 and writes, "erase or the next write stalled"
        assert receipt.status == "pending" and receipt.pending
        assert mw.erase_status(memory_id=memory.id).status == "pending"
        assert mw.finish_scrubs() == 1  # still held
    finally:
        transaction.rollback()
        reader.close()
    deadline = time.monotonic() + 20
    while mw.erase_status(memory_id=memory.id).status != "scrubbed":
        assert time.monotonic() < deadline, "the background scrub never finished"
        time.sleep(0.1)
    assert disk_hits(mw, WORD) == []
    scrubs = [r for r in ledger_rows(mw) if r["entity_type"] == "erasure"]
    assert [r["action"] for r in scrubs] == ["scrubbed"]
    assert mw.verify().ok


def test_bulk_erase_dry_run_lists_exactly_what_goes(mw: Memwarden) -> None:
    mw.add_project("other")
    with acting_as("agent:bob"):
        bob = mw.remember("atlas", f"Bob likes {WORD} socks", status="active").memory
        bob_chat = mw.capture("atlas", "bob chats about the weather", "ok")
    with acting_as("agent:amy"):
        amy = mw.remember("atlas", "Amy likes plain socks", status="active").memory
        amy_chat = mw.capture("atlas", f"amy mentions {WORD.upper()} once", "ok")
    elsewhere = mw.remember("other", f"Other project {WORD}", status="active").memory
    mw.ingest_text("atlas", "notes.md", f"# Notes\n\nThe {WORD} section.\n")
    chunk = next(h for h in mw.recall(WORD, "atlas") if h.kind == "chunk")

    by_query = mw.erase_preview(project="atlas", query=WORD)
    assert by_query.memories == [bob.id]
    assert by_query.blank_interactions == [amy_chat.id]
    assert by_query.blank_chunks == [chunk.id]
    by_actor = mw.erase_preview(actor="agent:bob")
    assert by_actor.memories == [bob.id] and by_actor.blank_interactions == [bob_chat.id]
    with pytest.raises(InvalidInputError, match="project, an actor or a text query"):
        mw.erase_preview()
    with pytest.raises(InvalidInputError, match="sources"):
        mw.erase_preview(project="atlas", sources="most")

    receipt = mw.erase_matching("right to be forgotten", project="atlas", query=WORD, wait=20)
    assert receipt.erased.memories == by_query.memories
    assert receipt.erased.interactions == by_query.blank_interactions
    assert receipt.erased.chunks == by_query.blank_chunks
    assert receipt.scope == {"project": "atlas", "query": WORD, "sources": "all"}
    assert mw.get(amy.id).content == "Amy likes plain socks"
    assert mw.get(elsewhere.id).content.endswith(WORD)
    assert index_matches(mw, WORD) == {elsewhere.id}
    assert not [h for h in mw.recall(WORD, "atlas")]
    assert mw.erase_preview(project="atlas", query=WORD).empty
    assert receipt.status == "scrubbed"
    assert mw.verify().ok


def test_status_of_unknown_erasures(mw: Memwarden) -> None:
    memory = mw.remember("atlas", "Never erased").memory
    with pytest.raises(NotFoundError):
        mw.erase_status(memory_id=memory.id)
    with pytest.raises(NotFoundError):
        mw.erase_status(receipt_id=99)
    with pytest.raises(InvalidInputError):
        mw.erase(memory.id, "privacy", wait=-1)
    assert mw.get(memory.id).content == "Never erased"


def test_a_scrub_left_pending_is_finished_by_the_next_open(settings: object) -> None:
    from memwarden import Settings

    assert isinstance(settings, Settings)
    with Memwarden.init(settings) as mw:
        mw.add_project("atlas")
        memory = mw.remember("atlas", f"The safe word is {WORD}").memory
        reader = mw.store.engine.connect()
        if not mw.store.is_sqlite:
            reader = reader.execution_options(isolation_level="REPEATABLE READ")
        transaction = reader.begin()
        reader.execute(sa.select(schema.memories.c.id)).all()
        try:
            assert mw.erase(memory.id, "privacy").status == "pending"
        finally:
            transaction.rollback()
            reader.close()
            mw.scrubber.close()  # this process stops before its background scrub ran
    with Memwarden(settings) as mw:
        deadline = time.monotonic() + 30
        while mw.erase_status(memory_id=memory.id).status != "scrubbed":
            assert time.monotonic() < deadline, "the next open never finished the scrub"
            time.sleep(0.1)
        assert disk_hits(mw, WORD) == []


def test_the_api_returns_the_receipt_and_the_status(mw: Memwarden) -> None:
    from fastapi.testclient import TestClient

    from memwarden.api import create_app

    memory = mw.remember("atlas", f"The pin is {WORD}").memory
    with TestClient(create_app(mw.settings, memwarden=mw), base_url="http://127.0.0.1") as client:
        erased = client.post(
            f"/memory/{memory.id}/erase", json={"reason": "asked to forget", "wait": 20}
        )
        assert erased.status_code == 200, erased.text
        body = erased.json()
        assert body["status"] == "erased" and body["content"] == ""
        assert body["receipt"]["status"] == "scrubbed"
        assert body["receipt"]["erased"]["memories"] == [memory.id]
        status = client.get(f"/memory/{memory.id}/erase-status")
        assert status.status_code == 200 and status.json()["id"] == body["receipt"]["id"]
        bad = client.post(f"/memory/{memory.id}/erase", json={"reason": "x", "sources": "most"})
        assert bad.status_code == 422
        assert client.get("/memory/999/erase-status").status_code == 404


def test_the_cli_erases_with_a_receipt_and_bulk_with_a_dry_run(settings: object) -> None:
    from cli_support import Cli
    from memwarden import Settings

    assert isinstance(settings, Settings)
    cli = Cli(settings.home, settings.database_url)
    cli.run("init")
    cli.run("project", "add", "atlas")
    first = cli.json("memory", "add", f"Tell no one: {WORD}", "-p", "atlas", "-t", "knowledge")
    cli.json("memory", "add", f"Also {WORD} again", "-p", "atlas", "-t", "knowledge")
    memory_id = first["memory"]["id"]
    out = cli.run("memory", "erase", str(memory_id), "--reason", "privacy", "--wait").stdout
    assert f"erased memory {memory_id}" in out and "scrubbed" in out
    status = cli.json("memory", "erase-status", str(memory_id))
    assert status["status"] == "scrubbed" and status["erased"]["memories"] == [memory_id]
    plan = cli.json("memory", "erase-matching", "--query", WORD, "--dry-run")
    assert len(plan["memories"]) == 1 and memory_id not in plan["memories"]
    missing = cli.error("memory", "erase-matching", "--query", WORD, code=2)
    assert "--reason" in missing
    done = cli.json("memory", "erase-matching", "--query", WORD, "--reason", "forget", "--wait")
    assert done["erased"]["memories"] == plan["memories"] and done["status"] == "scrubbed"
    cli.error("memory", "erase-status", "999")


def test_a_receipt_written_outside_memwarden_is_refused_not_scrubbed(mw: Memwarden) -> None:
    """A pending row put in the erasures table by hand, naming a live memory and an invented
    actor: the scrub recorded it as scrubbed (a tagged ledger row under that actor) while the
    memory stayed live (found by an attack session). The ledger holds no erase of it by that
    actor: the receipt is refused, alerted, and nothing is recorded."""
    text = "Ines Duarte is the range safety officer"
    live = mw.remember("atlas", text).memory
    erased = {
        "memories": [live.id],
        "interactions": [],
        "chunks": [],
        "oplog_rows": [],
        "alerts": [],
    }
    with mw.store.write() as unit:
        unit.conn.execute(
            sa.text(
                "INSERT INTO erasures (requested_at, actor, reason, scope, erased, status, "
                "pending, attempts) VALUES (:at, 'person:dpo@example.com', 'GDPR', '{}', "
                ":erased, 'pending', '[\"sqlite_wal\"]', 0)"
            ),
            {"at": datetime.now(UTC), "erased": json.dumps(erased)},
        )
        forged = int(unit.conn.execute(sa.text("SELECT max(id) FROM erasures")).scalar_one())
    assert mw.finish_scrubs() == 0
    assert mw.erase_status(receipt_id=forged).status == "refused"
    assert mw.alerts.flush(5)
    assert "Forged erasure receipt" in [a.title for a in mw.alerts.history()]
    assert mw.get(live.id).content == text
    assert not [r for r in ledger_rows(mw) if r["entity_type"] == "erasure"]
    # A real erase is vouched for and scrubbed as ever.
    assert mw.erase(live.id, "GDPR request", wait=20).status == "scrubbed"


def test_a_second_erase_of_a_shared_source_by_another_actor_is_vouched_for(
    mw: Memwarden,
) -> None:
    """Two memories cite one chunk; each is erased by another actor. The second erase finds
    the chunk blank already and writes no record of it under its actor: its receipt is still
    the ledger's (its memory's own ``erased`` record), and is scrubbed (found by a review of
    the first version, which refused it)."""
    document = mw.ingest_text("atlas", "plan.md", "# Plan\n\nThe range officer is Ines.")
    with mw.store.read() as conn:
        chunk = conn.execute(
            sa.select(schema.source_chunks.c.id).where(
                schema.source_chunks.c.document_id == document.document_id
            )
        ).scalar_one()
    first = mw.remember("atlas", "The range officer is Ines", source_chunk_id=chunk).memory
    second = mw.remember("atlas", "Ines runs range safety", source_chunk_id=chunk).memory
    with acting_as("person:dpo"):
        assert mw.erase(first.id, "request 1", wait=20).status == "scrubbed"
    with acting_as("api:ci"):
        assert mw.erase(second.id, "request 2", wait=20).status == "scrubbed"
    assert all(a.title != "Forged erasure receipt" for a in mw.alerts.history())
