"""The automatic moves: promote the well-reinforced, expire the stale; idempotent, audited."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from core_support import db_state
from extraction_support import cli_for
from memwarden import Memwarden, Settings
from memwarden.audit.actor import AUTO_PROMOTE, CANDIDATE_EXPIRY, acting_as
from memwarden.errors import InvalidInputError, NotFoundError


def candidate(mw: Memwarden, text: str, reinforcements: int = 0, confidence: float = 0.7) -> int:
    """A candidate written by one person and confirmed by others: auto-promotion counts only
    reinforcement from a different source than the writer."""
    memory = mw.remember("atlas", text, "knowledge", confidence).memory
    for n in range(reinforcements):
        with acting_as(f"cli:reviewer-{n}"):
            mw.reinforce(memory.id)
    return memory.id


def test_the_writer_repeating_itself_does_not_count(mw: Memwarden) -> None:
    memory = mw.remember("atlas", "Caches are warmed at boot.", "knowledge", 0.9).memory
    for _ in range(5):
        mw.reinforce(memory.id)  # the same actor that wrote it
    assert mw.get(memory.id).independent_reinforcements == 0
    assert mw.promote_reinforced(min_reinforcements=1).moved == []
    with acting_as("cli:someone-else"):
        mw.reinforce(memory.id)
    assert [m.id for m in mw.promote_reinforced(min_reinforcements=1).moved] == [memory.id]


def test_promote_reinforced_moves_only_what_meets_both_thresholds(mw: Memwarden) -> None:
    due = candidate(mw, "Builds run on arm64 runners.", reinforcements=3)
    few = candidate(mw, "The cache is warmed at boot.", reinforcements=2)
    unsure = candidate(mw, "The API might be rate limited.", reinforcements=5, confidence=0.4)
    active = mw.remember("atlas", "Deploys go through Argo CD.", "project", status="active").memory
    for _ in range(4):
        mw.reinforce(active.id)
    report = mw.promote_reinforced()
    assert [m.id for m in report.moved] == [due]
    assert report.criteria == {"min_reinforcements": 3, "min_confidence": 0.6, "project": None}
    assert mw.get(due).status == "active"
    assert mw.get(few).status == mw.get(unsure).status == "candidate"
    last = mw.history(due)[-1]
    assert (last.action, last.actor) == ("auto_promoted", AUTO_PROMOTE)
    assert last.note == "reinforced at least 3 times with confidence at least 0.6"
    before = db_state(mw)
    assert mw.promote_reinforced().moved == [], "a second run finds nothing to move"
    assert db_state(mw) == before
    looser = mw.promote_reinforced(min_reinforcements=2, min_confidence=0.3)
    assert sorted(m.id for m in looser.moved) == [few, unsure]


def test_expire_stale_moves_old_unreinforced_candidates_only(mw: Memwarden) -> None:
    stale = candidate(mw, "The office wifi password rotates monthly.")
    kept = candidate(mw, "Staging resets on Sundays.", reinforcements=1)
    later = datetime.now(UTC) + timedelta(days=15)
    assert mw.expire_stale().moved == [], "nothing is 14 days old yet"
    report = mw.expire_stale(now=later)
    assert [m.id for m in report.moved] == [stale]
    assert mw.get(stale).status == "expired" and mw.get(kept).status == "candidate"
    last = mw.history(stale)[-1]
    assert (last.action, last.actor) == ("expired", CANDIDATE_EXPIRY)
    assert mw.expire_stale(now=later).moved == []
    assert mw.expire_stale(days=0).moved == []  # the reinforced one never expires


def test_the_defaults_come_from_the_settings(settings: Settings) -> None:
    tuned = settings.model_copy(
        update={
            "auto_promote_min_reinforcements": 1,
            "auto_promote_min_confidence": 0.9,
            "candidate_expiry_days": 0,
        }
    )
    with Memwarden.init(tuned) as mw:
        mw.add_project("atlas")
        sure = candidate(mw, "Sure thing.", reinforcements=1, confidence=0.95)
        candidate(mw, "Less sure.", reinforcements=1, confidence=0.8)
        fresh = candidate(mw, "Never confirmed.")
        assert [m.id for m in mw.promote_reinforced().moved] == [sure]
        assert [m.id for m in mw.expire_stale().moved] == [fresh]


def test_moves_filter_by_project_and_refuse_bad_arguments(mw: Memwarden) -> None:
    mw.add_project("hermes")
    here = candidate(mw, "Atlas fact.", reinforcements=3)
    there = mw.remember("hermes", "Hermes fact.", "knowledge", 0.9).memory.id
    for n in range(3):
        with acting_as(f"cli:reviewer-{n}"):
            mw.reinforce(there)
    assert [m.id for m in mw.promote_reinforced(project="hermes").moved] == [there]
    assert mw.get(here).status == "candidate"
    with pytest.raises(NotFoundError, match="unknown project"):
        mw.expire_stale(project="ghost")
    with pytest.raises(InvalidInputError):
        mw.promote_reinforced(min_reinforcements=0)
    with pytest.raises(InvalidInputError):
        mw.promote_reinforced(min_confidence=1.5)
    with pytest.raises(InvalidInputError):
        mw.expire_stale(days=-1)


def test_a_candidate_triaged_meanwhile_is_left_alone(mw: Memwarden) -> None:
    first = candidate(mw, "One.", reinforcements=3)
    second = candidate(mw, "Two.", reinforcements=3)
    mw.reject(second)
    report = mw.promote_reinforced()
    assert [m.id for m in report.moved] == [first] and mw.get(second).status == "rejected"


def test_cli_moves_report_what_they_moved(settings: Settings) -> None:
    cli = cli_for(settings)
    for _ in range(4):
        cli.run(
            "capture", "-p", "atlas", "--prompt", "I prefer tabs over spaces.", "--response", "ok"
        )
    cli.run("capture", "-p", "atlas", "--prompt", "We decided to use Kafka.", "--response", "ok")
    cli.run("extract")
    out = cli.run("promote-reinforced").stdout
    assert out.startswith("auto-promoted 1 candidate(s) as auto-promote")
    assert "I prefer tabs over spaces." in out
    assert cli.json("promote-reinforced")["count"] == 0
    expired = cli.json("expire-stale", "--days", "0")
    assert expired["count"] == 1 and expired["moved"][0]["content"] == "We decided to use Kafka."
    assert cli.run("expire-stale").stdout.strip() == "expired 0 candidate(s) as candidate-expiry"
    assert "Invalid value" in cli.error("expire-stale", "--days", "-1", code=2)
