"""The actor is threaded through every mutation: a walk over the whole public facade."""

from __future__ import annotations

import inspect
import json
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from erase_support import scrub_all
from integrity_support import raw
from ledger_support import head_seq, ledger_rows
from memwarden import Memwarden
from memwarden.audit.actor import (
    AUTO_PROMOTE,
    CANDIDATE_EXPIRY,
    DEFAULT_ACTOR,
    HUMAN_TRIAGE,
    INTEGRITY_REPAIR,
    REINFORCEMENT,
    acting_as,
    current_actor,
)
from memwarden.core import provenance
from memwarden.core.provenance import PERSON, Principal, Scopes, acting_for
from memwarden.db import schema
from memwarden.errors import InvalidInputError

# Public methods of the facade that read, or touch only files beside the database.
NOT_MUTATIONS = {
    "init",
    "close",
    "list_projects",
    "get_state",
    "list_state",
    "get",
    "list_memories",
    "recall",
    "context",
    "list_keys",
    "authenticate",
    "keys_configured",
    "keys_unbound_to_token",
    "history",
    "as_of",
    "diff",
    "blame",
    "recent",
    "verify",
    "anchor",
    "reset_witness",
    "get_interaction",
    "list_interactions",
    "triage_queue",
    "triage_size",
    "triage_detail",
    # Who was served a memory (a read log), and dashboard sign-outs (session bookkeeping).
    "readers",
    "end_session",
    "session_ended",
    # Erasure: the dry run and the receipt are reads; finish_scrubs records each completed
    # scrub on behalf of the actor who asked for that erase (tests/test_erase_copies.py).
    "erase_preview",
    "erase_status",
    "finish_scrubs",
    # The integrity scan's records, the harness, the nightly pipeline's run records and the
    # dashboard's reads: bookkeeping and reads, never memory (integrity_check's repairs are
    # walked below).
    "integrity_runs",
    "latest_integrity",
    "ledger_check",
    "run_harness",
    "harness_runs",
    "harness_fixtures",
    "nightly_lock",
    "begin_nightly_run",
    "record_nightly_step",
    "finish_nightly_run",
    "nightly_run",
    "nightly_runs",
    "alert_feed",
    "alert_webhooks",
    "alert_dead_letters",
    "api_key",
    "dashboard",
    "last_alerts",
    "memory_counts",
    "memory_story",
    "mutations_per_day",
    "operations",
    "recent_mutations",
    "revert_preview",
    # Reads of the erase machinery and recall, and the receipt signature (no row written).
    "recall_detailed",
    "recall_health",
    "embedding_status",
    "wait_for_embeddings",
    "sign_receipt",
    # Derived from the ledger and the memories, never memory itself: the Merkle tree and its
    # signed checkpoints (over the ledger's rows; a checkpoint row is no ledger row), the proofs
    # and evidence read from them, and the vectors (rebuilt from the memories' text).
    "checkpoint",
    "checkpoint_status",
    "checkpoint_verifier_key",
    "verify_checkpoint",
    "prove",
    "prove_consistency",
    "export_evidence",
    "rebuild_tree",
    "rebuild_index",
    "start_index_sweep",
}


Step = tuple[str, Callable[[], Any], frozenset[str]]
CALLER = frozenset({"x"})


def walk(mw: Memwarden, tmp_path: Path) -> list[Step]:
    """Every public mutation, each a call that must write at least one ledger row, with the
    actors its rows may carry: the caller's, or the spec's name for an automated path."""
    ids: dict[str, int] = {}
    doc = tmp_path / "notes.md"
    doc.write_text("# Notes\n\nThe rover weighs 900 kg.\n", "utf-8")

    def remember() -> None:
        for name, text in [
            ("a", "The launch window opens in March"),
            ("b", "The fuel is kerosene"),
            ("c", "Telemetry runs at 2 Hz"),
            ("d", "The crew is four people"),
            ("e", "Landing is at dawn"),
            ("f", "The antenna is 3 m wide"),
            ("g", "The hull is titanium"),
            ("h", "The rover has six wheels"),
            ("i", "The mast is 2 m tall"),
            ("j", "The dock is on the nrth side"),
        ]:
            # "f" is reinforced below towards auto-promotion, which counts only confirmation
            # from another source than the writer: it is written with another key.
            desk = Principal(PERSON, "other-desk") if name == "f" else provenance.current()
            with acting_for(desk):
                ids[name] = mw.remember("atlas", text, confidence=0.8).memory.id

    def reinforce_three_times() -> None:
        for _ in range(3):
            mw.reinforce(ids["f"])

    def ingest_text_again() -> None:
        mw.update(ids["g"], source_chunk_id=_newest_chunk(mw))
        # Re-ingesting replaces the chunks: the citing memory loses its citation, audited.
        mw.ingest_text("atlas", "inline://notes", "# Notes\n\nThe rover weighs 950 kg.\n")

    def integrity_fix() -> None:
        # The citation made just before is left dangling behind memwarden's back; the scan
        # repairs it.
        with raw(mw) as conn:
            conn.execute(
                sa.delete(schema.source_chunks).where(
                    schema.source_chunks.c.id == _newest_chunk(mw)
                )
            )
        mw.integrity_check(fix=True)

    line = json.dumps({"project": "atlas", "prompt": "I prefer metric units.", "response": "OK."})
    return [
        ("add_project", lambda: mw.add_project("scratch", "to be removed"), CALLER),
        ("remove_project", lambda: mw.remove_project("scratch"), CALLER),
        ("set_state", lambda: mw.set_state("atlas", "config", "owner", "alice"), CALLER),
        ("delete_state", lambda: mw.delete_state("atlas", "config", "owner"), CALLER),
        ("remember", remember, CALLER),
        (
            "remember (restated)",
            lambda: mw.remember("atlas", "the launch window opens in MARCH"),
            CALLER,
        ),
        ("update", lambda: mw.update(ids["a"], confidence=0.9), CALLER),
        ("promote", lambda: mw.promote(ids["a"]), CALLER),
        ("auto_promote", lambda: mw.auto_promote(ids["b"]), CALLER),
        ("reject", lambda: mw.reject(ids["c"]), CALLER),
        ("expire", lambda: mw.expire(ids["d"]), CALLER),
        ("invalidate", lambda: mw.invalidate(ids["b"]), CALLER),
        ("reinforce", reinforce_three_times, CALLER),
        (
            "supersede",
            lambda: mw.supersede(ids["a"], content="The launch window opens in April"),
            CALLER,
        ),
        ("supersede (by id)", lambda: _supersede_by_id(mw), CALLER),
        ("update (to revert)", lambda: mw.update(ids["i"], content="The mast is 3 m tall"), CALLER),
        (
            "revert",
            lambda: mw.revert(ids["i"], mw.history(ids["i"])[0].seq, note="wrong edit"),
            CALLER,
        ),
        # Each erase's background scrub is finished inside its own step: a scrub row landing
        # during a later step (as the caller) would be counted against that step's actors.
        ("erase", lambda: _finished(mw, mw.erase(ids["e"], "privacy request")), CALLER),
        (
            "erase_matching",
            lambda: _finished(
                mw, mw.erase_matching("privacy request", project="atlas", query="crew")
            ),
            CALLER,
        ),
        # Another erase, then its scrub finished now: the scrub's row carries the actor who
        # asked for the erase (the caller here), whichever thread finishes it.
        ("finish_scrubs", lambda: _erase_then_finish_scrubs(mw, ids["c"]), CALLER),
        ("ingest", lambda: mw.ingest([doc], "atlas"), CALLER),
        (
            "ingest_text",
            lambda: mw.ingest_text(
                "atlas", "inline://notes", "# Notes\n\nThe rover weighs 900 kg.\n"
            ),
            CALLER,
        ),
        ("ingest_text (replacing cited chunks)", ingest_text_again, CALLER),
        ("create_key", lambda: mw.create_key("robot", "write"), CALLER),
        (
            "set_key_scopes",
            lambda: mw.set_key_scopes("robot", Scopes.for_role("write")),
            CALLER,
        ),
        ("revoke_key", lambda: mw.revoke_key("robot"), CALLER),
        (
            "capture",
            lambda: mw.capture("atlas", "I prefer tabs over spaces.", "Noted.", "cli"),
            CALLER,
        ),
        ("capture_lines", lambda: mw.capture_lines([line]), CALLER),
        ("extract", lambda: mw.extract("atlas"), frozenset({"extractor:rules", REINFORCEMENT})),
        ("triage_promote", lambda: mw.triage_promote([ids["g"]]), frozenset({HUMAN_TRIAGE})),
        ("triage_reject", lambda: mw.triage_reject([ids["h"]]), frozenset({HUMAN_TRIAGE})),
        (
            "triage_edit_promote",
            lambda: mw.triage_edit_promote(ids["j"], "The dock is on the north side"),
            frozenset({HUMAN_TRIAGE}),
        ),
        (
            "promote_reinforced",
            lambda: mw.promote_reinforced(project="atlas"),
            frozenset({AUTO_PROMOTE}),
        ),
        (
            "expire_stale",
            lambda: mw.expire_stale(days=0, now=datetime.now(UTC) + timedelta(days=1)),
            frozenset({CANDIDATE_EXPIRY}),
        ),
        (
            "update (to cite a chunk)",
            lambda: mw.update(ids["f"], source_chunk_id=_newest_chunk(mw)),
            CALLER,
        ),
        ("integrity_check", integrity_fix, frozenset({INTEGRITY_REPAIR})),
    ]


def _newest_chunk(mw: Memwarden) -> int:
    with mw.store.read() as conn:
        query = sa.select(sa.func.max(schema.source_chunks.c.id))
        return int(conn.execute(query).scalar_one())


def _finished(mw: Memwarden, receipt: object) -> None:
    scrub_all(mw)


def _erase_then_finish_scrubs(mw: Memwarden, memory_id: int) -> None:
    mw.erase(memory_id, "privacy request")
    # Until none is pending: on a PostgreSQL server shared with other tests, a snapshot older
    # than the erase keeps the receipt pending, and the background scrubber then finished it
    # during a later step (seen in CI: a "scrubbed" row in the integrity step).
    scrub_all(mw, rewrite=True)


def _supersede_by_id(mw: Memwarden) -> None:
    old = mw.remember("atlas", "Old fact", status="active").memory
    new = mw.remember("atlas", "New fact", status="active").memory
    mw.supersede(old.id, by=new.id)


def test_every_public_mutation_records_its_actor(mw: Memwarden, tmp_path: Path) -> None:
    steps = walk(mw, tmp_path)
    walked = {name.split(" ")[0] for name, _, _ in steps}
    public = {
        name
        for name, member in inspect.getmembers(Memwarden)
        if not name.startswith("_") and callable(member)
    }
    unknown = public - walked - NOT_MUTATIONS
    assert not unknown, (
        f"new public facade method(s) {sorted(unknown)}: walk them here if they mutate "
        "(the ledger must record their actor), else list them in NOT_MUTATIONS"
    )
    assert not (walked - public), "the walk names a method the facade no longer has"
    actions: set[tuple[str, str]] = set()
    for name, call, allowed in steps:
        start = head_seq(mw)
        with acting_as("x"):
            call()
        # The alerts' mirror into project state writes as its own actor, "alerts", on the
        # alert writer's thread (whenever a step raised an alert): not this step's rows.
        new = [r for r in ledger_rows(mw) if r["seq"] > start and r["actor"] != "alerts"]
        assert new, f"{name} wrote no ledger row"
        wrong = {(row["action"], row["actor"]) for row in new if row["actor"] not in allowed}
        assert not wrong, f"{name} recorded another actor than {sorted(allowed)}: {wrong}"
        actions |= {(row["entity_type"], row["action"]) for row in new}
    assert {
        ("project", "created"),
        ("project", "deleted"),
        ("project_state", "state_set"),
        ("project_state", "state_deleted"),
        ("memory", "created"),
        ("memory", "reinforced"),
        ("memory", "updated"),
        ("memory", "promoted"),
        ("memory", "auto_promoted"),
        ("memory", "rejected"),
        ("memory", "expired"),
        ("memory", "invalidated"),
        ("memory", "superseded"),
        ("memory", "reverted"),
        ("memory", "erased"),
        ("document", "created"),
        ("document", "updated"),
        ("api_key", "created"),
        ("api_key", "revoked"),
        ("interaction", "captured"),
    } <= actions
    assert mw.verify().ok


def test_the_default_actor_when_none_is_set(mw: Memwarden) -> None:
    assert current_actor() == DEFAULT_ACTOR
    memory = mw.remember("atlas", "Nobody said who").memory
    assert mw.history(memory.id)[-1].actor == DEFAULT_ACTOR
    with acting_as("outer"):
        with acting_as("inner"):
            mw.promote(memory.id)
        mw.reinforce(memory.id)
    mw.reinforce(memory.id)
    assert [r.actor for r in mw.history(memory.id)] == [
        DEFAULT_ACTOR,
        "inner",
        "outer",
        DEFAULT_ACTOR,
    ]


def test_the_actor_does_not_leak_across_threads(mw: Memwarden) -> None:
    memory = mw.remember("atlas", "Shared between threads").memory
    seen: list[str] = []

    def other_thread() -> None:
        seen.append(current_actor())
        mw.reinforce(memory.id)

    with acting_as("main-thread"):
        worker = threading.Thread(target=other_thread)
        worker.start()
        worker.join()
    assert seen == [DEFAULT_ACTOR]
    assert mw.history(memory.id)[-1].actor == DEFAULT_ACTOR


@pytest.mark.parametrize("name", ["", "   ", "x" * 201, "tab\there", "new\nline"])
def test_a_bad_actor_name_is_refused(name: str) -> None:
    with pytest.raises(InvalidInputError, match="actor"):
        with acting_as(name):
            pass
    assert current_actor() == DEFAULT_ACTOR
