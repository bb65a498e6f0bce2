"""`extract` over stored interactions: origins, reinforcement, the watermark, resuming."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from core_support import db_state, ledger_count
from memwarden import Memwarden, Settings
from memwarden.audit.actor import REINFORCEMENT
from memwarden.core.capture import Interaction
from memwarden.core.extraction.base import Candidate
from memwarden.core.extraction.rules import RuleExtractor
from memwarden.db import schema
from memwarden.errors import InvalidInputError, NotFoundError


def origins(mw: Memwarden) -> list[tuple[int, int, str, str]]:
    table = schema.memory_origins
    with mw.store.read() as conn:
        rows = conn.execute(
            sa.select(
                table.c.memory_id,
                table.c.interaction_id,
                table.c.extractor,
                table.c.extractor_version,
            ).order_by(table.c.id)
        )
        return [tuple(r) for r in rows]  # type: ignore[misc]


def test_candidates_carry_type_confidence_origin_and_extractor(mw: Memwarden) -> None:
    first = mw.capture("atlas", "I prefer tabs over spaces. What time is it?", "Noted.")
    report = mw.extract()
    assert (report.interactions, len(report.created), report.watermarks) == (
        1,
        1,
        {"atlas": first.id},
    )
    memory = mw.get(report.created[0])
    assert (memory.type, memory.status, memory.content) == (
        "preference",
        "candidate",
        "I prefer tabs over spaces.",
    )
    assert memory.confidence == 0.7
    assert origins(mw) == [(memory.id, first.id, "rules", RuleExtractor.version)]
    created = mw.history(memory.id)[0]
    assert (created.action, created.actor) == ("created", "extractor:rules")
    assert created.note == f"extracted from interaction {first.id} by rules {RuleExtractor.version}"
    assert mw.verify().ok


def test_a_statement_of_the_agent_is_extracted_and_its_side_recorded(mw: Memwarden) -> None:
    said = mw.capture(
        "atlas",
        "Where do we stand?",
        "We decided to use PostgreSQL for the billing service.",
    )
    report = mw.extract()
    assert len(report.created) == 1
    memory = mw.get(report.created[0])
    assert (memory.type, memory.content) == (
        "project",
        "We decided to use PostgreSQL for the billing service.",
    )
    created = mw.history(memory.id)[0]
    assert created.note == (
        f"extracted from the assistant's response in interaction {said.id} "
        f"by rules {RuleExtractor.version}"
    )
    assert created.extra is not None and created.extra["side"] == "assistant"
    # The user restating it reinforces the same memory; the note says whose words they were.
    mw.capture("atlas", "We decided to use PostgreSQL for the billing service.", "ok")
    mw.extract()
    restated = mw.history(memory.id)[-1]
    assert restated.action == "reinforced"
    assert restated.note.startswith("restated in interaction ")
    assert mw.verify().ok


def test_restating_reinforces_instead_of_duplicating(mw: Memwarden) -> None:
    mw.capture("atlas", "I prefer tabs over spaces.", "ok")
    mw.capture("atlas", "i prefer TABS over spaces", "ok")  # the same, normalised
    mw.capture("atlas", "I really prefer tabs over spaces.", "ok")  # similar enough (0.83)
    mw.capture("atlas", "I prefer spaces over tabs in YAML files.", "ok")  # not similar
    report = mw.extract()
    assert len(report.created) == 2 and len(report.reinforced) == 2
    tabs = mw.get(report.created[0])
    assert tabs.reinforcement_count == 2
    steps = [(r.action, r.actor) for r in mw.history(tabs.id)]
    assert steps == [
        ("created", "extractor:rules"),
        ("reinforced", REINFORCEMENT),
        ("reinforced", REINFORCEMENT),
    ]
    assert [i for m, i, _, _ in origins(mw) if m == tabs.id] == [1, 2, 3]


def test_numbers_and_negation_keep_statements_apart(mw: Memwarden) -> None:
    mw.capture("atlas", "We decided to use PostgreSQL 15 in production.", "ok")
    mw.capture("atlas", "We decided to use PostgreSQL 16 in production.", "ok")
    mw.capture("atlas", "I like long meetings on Mondays.", "ok")
    mw.capture("atlas", "I don't like long meetings on Mondays.", "ok")
    report = mw.extract()
    assert len(report.created) == 4 and report.reinforced == []


def test_the_similarity_threshold_is_configurable(settings: Settings) -> None:
    strict = settings.model_copy(update={"reinforce_similarity": 1.0})
    with Memwarden.init(strict) as mw:
        mw.add_project("atlas")
        mw.capture("atlas", "I prefer tabs over spaces.", "ok")
        mw.capture("atlas", "I really prefer tabs over spaces.", "ok")
        assert len(mw.extract().created) == 2


def test_a_live_memory_made_by_hand_is_reinforced_and_a_rejected_one_is_not(mw: Memwarden) -> None:
    active = mw.remember("atlas", "We deploy with Argo CD.", "project", status="active").memory
    rejected = mw.remember("atlas", "I prefer dark mode.", "preference").memory
    mw.reject(rejected.id)
    mw.capture("atlas", "We deploy with Argo CD. I prefer dark mode.", "ok")
    report = mw.extract()
    assert report.reinforced == [active.id]
    assert len(report.created) == 1 and report.created[0] != rejected.id
    assert mw.get(active.id).reinforcement_count == 1 and mw.get(active.id).status == "active"


def test_one_interaction_reinforces_a_memory_once(mw: Memwarden) -> None:
    mw.capture("atlas", "I prefer tabs over spaces.", "ok")
    mw.capture("atlas", "I prefer tabs over spaces. Really, I prefer tabs over spaces!", "ok")
    report = mw.extract()
    assert len(report.created) == 1 and len(report.reinforced) == 1
    assert mw.get(report.created[0]).reinforcement_count == 1


def test_a_rerun_extracts_nothing_new(mw: Memwarden) -> None:
    for i in range(5):
        mw.capture("atlas", f"We decided to ship release {i} on a Friday.", "ok")
    first = mw.extract(batch_size=2)
    assert first.interactions == 5 and len(first.created) == 5
    before = db_state(mw)
    again = mw.extract()
    assert (again.interactions, again.created, again.reinforced) == (0, [], [])
    assert db_state(mw) == before, "a rerun must not write anything"
    mw.capture("atlas", "We decided to ship release 9 on a Friday.", "ok")
    assert mw.extract().interactions == 1


class Crashing:
    """The rule extractor, except that it dies at one interaction (a crash mid-run)."""

    name = "rules"
    version = RuleExtractor.version

    def __init__(self, crash_at: int | None) -> None:
        self.crash_at = crash_at
        self.inner = RuleExtractor()
        self.seen: list[int] = []

    def extract(self, interaction: Interaction) -> list[Candidate]:
        if interaction.id == self.crash_at:
            raise RuntimeError("killed")
        self.seen.append(interaction.id)
        return self.inner.extract(interaction)

    def close(self) -> None:
        return None


def test_an_interrupted_run_resumes_where_its_last_batch_ended(mw: Memwarden) -> None:
    for i in range(10):
        mw.capture("atlas", "I prefer tabs over spaces." if i % 2 else f"We use Redis {i}.", "ok")
    crashing = Crashing(crash_at=6)
    with pytest.raises(RuntimeError, match="killed"):
        mw.extract(extractor=crashing, batch_size=4)
    assert crashing.seen == [1, 2, 3, 4, 5]  # batch 1 committed; batch 2 died at 6
    assert {i for _, i, _, _ in origins(mw)} == {1, 2, 3, 4}
    resumed = Crashing(crash_at=None)
    report = mw.extract(extractor=resumed, batch_size=4)
    assert resumed.seen == [5, 6, 7, 8, 9, 10] and report.interactions == 6
    assert sorted(i for _, i, _, _ in origins(mw)) == list(range(1, 11))
    tabs = [m for m in mw.list_memories() if m.type == "preference"]
    assert len(tabs) == 1 and tabs[0].reinforcement_count == 4  # 5 restatements, once each
    assert mw.verify().ok


def test_a_batch_taken_by_another_run_is_not_written_twice(mw: Memwarden) -> None:
    mw.capture("atlas", "We decided to use Kafka.", "ok")

    class Racing(Crashing):
        def extract(self, interaction: Interaction) -> list[Candidate]:
            if not self.seen:  # another run completes the batch while this one extracts
                mw.extract()
            return super().extract(interaction)

    racing = Racing(crash_at=None)
    report = mw.extract(extractor=racing)
    assert report.interactions == 0 and report.created == []
    assert len(origins(mw)) == 1 and len(mw.list_memories()) == 1


def test_limit_project_filter_and_bad_arguments(mw: Memwarden) -> None:
    mw.add_project("hermes")
    for project in ("atlas", "hermes", "atlas"):
        mw.capture(project, "We decided to use Kafka for events.", "ok")
    assert mw.extract("hermes").interactions == 1
    limited = mw.extract(limit=1)
    assert limited.interactions == 1 and mw.extract().interactions == 1
    ledger = ledger_count(mw)
    with pytest.raises(NotFoundError, match="unknown project 'ghost'"):
        mw.extract("ghost")
    with pytest.raises(InvalidInputError, match="unknown extractor"):
        mw.extract(extractor="magic")
    with pytest.raises(InvalidInputError, match="positive"):
        mw.extract(limit=0)
    with pytest.raises(InvalidInputError, match="MEMWARDEN_LLM_URL"):
        mw.extract(extractor="llm")
    assert ledger_count(mw) == ledger


def test_invalid_candidates_are_counted_and_skipped(mw: Memwarden) -> None:
    mw.capture("atlas", "anything", "ok")

    class Odd(Crashing):
        def extract(self, interaction: Interaction) -> list[Candidate]:
            return [
                Candidate("opinion", "Not a known type.", 0.7, interaction.id),
                Candidate("knowledge", "x" * 70_000, 0.7, interaction.id),
                Candidate("knowledge", "Fine statement.", 1.5, interaction.id),
                Candidate("knowledge", "A good one.", 0.7, interaction.id),
            ]

    report = mw.extract(extractor=Odd(None))
    assert report.invalid_candidates == 3 and len(report.created) == 1
