"""Metadata on memories (issue 17): validated, stored canonically, filterable before the top-k
cut, recorded in the ledger (history, diff, revert, time travel, replay), covered by the row
MAC, and recall ranked by recency or importance when asked. Both engines."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from memwarden import Memwarden, Settings
from memwarden.audit.rowmac import MemoryMacFields
from memwarden.core import metadata
from memwarden.errors import InvalidInputError, TamperedRowError


@pytest.fixture
def settings(engine_name: str, tmp_path: Any, request: pytest.FixtureRequest) -> Settings:
    """Full text only: these tests are about filters and ledger fields, not the embedder."""
    home = tmp_path / "home"
    if engine_name == "sqlite":
        return Settings(home=home, embedder="none")
    url = request.getfixturevalue("pg_schema_url")
    return Settings(home=home, database_url=url, embedder="none")


def raw(mw: Memwarden, sql: str, **params: Any) -> Any:
    with mw.store.write() as unit:
        return unit.conn.execute(sa.text(sql), params)


def ledger_count(mw: Memwarden) -> int:
    with mw.store.read() as conn:
        return int(conn.execute(sa.text("SELECT count(*) FROM ledger")).scalar_one())


# -- validation (no database) -----------------------------------------------------------------
@pytest.mark.parametrize(
    ("given", "says"),
    [
        ("[1, 2]", "must be a JSON object, not an array"),
        ('"text"', "must be a JSON object, not a string"),
        ("{not json", "not valid JSON"),
        ('{"a": 1, "a": 2}', "repeats the key"),
        ('{"a": NaN}', "NaN is not a JSON number"),
        ({"a": {"b": {"c": {"d": {"e": 1}}}}}, "deeper than 4"),
        ({"k" * 65: 1}, "over 64 characters"),
        ({f"k{i}": i for i in range(65)}, "over 64"),
        ({"big": "x" * 9000}, "over the 8192 limit"),
        ({"": 1}, "non-empty strings"),
        ({"a\nb": 1}, "control character"),
        ({"a": "x\x00y"}, "NUL character"),
        ('{"a": "\\ud800"}', "not valid Unicode"),
        ({"\ud800": 1}, "not valid Unicode"),
    ],
)
def test_bad_metadata_is_refused_with_one_clear_line(given: Any, says: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        metadata.parse(given)
    assert says in str(caught.value) and "\n" not in str(caught.value)


def test_metadata_is_stored_canonically_and_empty_is_none() -> None:
    assert metadata.parse('{"b": 1, "a": "é"}') == '{"a":"é","b":1}'
    assert metadata.parse({}) is None and metadata.parse(None) is None
    assert metadata.parse({"a": {"b": {"c": [1]}}}) == '{"a":{"b":{"c":[1]}}}'  # depth 4


def test_the_replay_fast_path_writes_metadata_as_the_ledger_does() -> None:
    """The integrity replay compares a row's text with the ledger's without parsing: the
    stored canonical metadata must sit in it exactly where canonical JSON puts it."""
    from memwarden.audit.chain import canonical_json
    from memwarden.observability.integrity.replay import MemoryRow

    when = "2026-01-01T00:00:00+00:00"
    stored = metadata.parse({"z": True, "a": {"b": [1, "é"]}})
    row = MemoryRow(1, "p", "t", "c", "h", 0.5, "active", None, 0, None, when, when, None, stored)
    assert row.text() == canonical_json(row.snapshot())
    plain = row._replace(metadata=None)
    assert plain.text() == canonical_json(plain.snapshot()) and "metadata" not in plain.text()


def test_where_conditions_parse_and_compare_as_documented() -> None:
    where = metadata.parse_where(["team=core", "priority=3", "done=false"])
    assert metadata.matches({"team": "core", "priority": 3, "done": False}, where)
    assert metadata.matches({"team": "core", "priority": "3", "done": "false"}, where)
    assert not metadata.matches({"team": "core", "priority": 4, "done": False}, where)
    assert not metadata.matches({"team": ["core"], "priority": 3, "done": False}, where)
    assert metadata.parse_where({"n": 2.5, "ok": True}) == (
        metadata.Condition("n", "2.5"),
        metadata.Condition("ok", "true"),
    )
    for bad in (["novalue"], ['a"b=1'], {"a": [1]}):
        with pytest.raises(InvalidInputError):
            metadata.parse_where(bad)


# -- storage, both engines --------------------------------------------------------------------
def test_add_update_list_with_metadata_and_nothing_written_when_bad(mw: Memwarden) -> None:
    made = mw.remember("atlas", "The rover weighs 900 kg", metadata={"team": "core", "n": 1})
    assert made.memory.meta == {"team": "core", "n": 1}
    assert mw.get(made.memory.id).to_dict()["metadata"] == {"n": 1, "team": "core"}
    before = ledger_count(mw)
    with pytest.raises(InvalidInputError):
        mw.remember("atlas", "A second fact", metadata="[1]")
    with pytest.raises(InvalidInputError):
        mw.update(made.memory.id, metadata={"x": {"y": {"z": {"w": {"v": 1}}}}})
    assert ledger_count(mw) == before
    assert [m.content for m in mw.list_memories(project="atlas")] == ["The rover weighs 900 kg"]
    updated = mw.update(made.memory.id, metadata={"team": "ops"})  # replaces the object
    assert updated.meta == {"team": "ops"}
    assert mw.get(made.memory.id).meta == {"team": "ops"}
    cleared = mw.update(made.memory.id, metadata={})
    assert cleared.meta == {} and cleared.to_dict()["metadata"] == {}


def test_list_filters_in_the_query_before_its_limit(mw: Memwarden) -> None:
    wanted = mw.remember("atlas", "Old fact about fuel", metadata={"team": "core", "p": 3}).memory
    for i in range(6):  # newer ones that do not match fill the first page otherwise
        mw.remember("atlas", f"Newer fact number {i}", metadata={"team": "ops", "p": i})
    mw.remember("atlas", "A fact without metadata")
    found = mw.list_memories(project="atlas", where=["team=core"], limit=2)
    assert [m.id for m in found] == [wanted.id]
    assert [m.id for m in mw.list_memories(project="atlas", where=["team=core", "p=3"])] == [
        wanted.id
    ]
    assert mw.list_memories(project="atlas", where=["team=core", "p=4"]) == []
    assert len(mw.list_memories(project="atlas", where={"team": "ops"}, limit=50)) == 6


def test_recall_filters_before_the_top_k_cut(mw: Memwarden) -> None:
    # Ten strong matches without the tag, one weaker match with it, k=3: a filter applied
    # after the cut would return nothing.
    for i in range(10):
        mw.remember("atlas", f"launch window launch window launch plan {i}", status="active")
    tagged = mw.remember(
        "atlas", "the launch slipped a week", status="active", metadata={"source": "ops"}
    ).memory
    plain = mw.recall("launch window", "atlas", k=3)
    assert tagged.id not in [h.id for h in plain]
    hits = mw.recall("launch window", "atlas", k=3, where=["source=ops"])
    assert [h.id for h in hits] == [tagged.id]
    assert hits[0].provenance["metadata"] == {"source": "ops"}
    assert mw.recall("launch window", "atlas", k=3, where=["source=nobody"]) == []


def test_a_metadata_change_is_in_history_diff_revert_and_time_travel(mw: Memwarden) -> None:
    memory = mw.remember("atlas", "The crew is four", status="active", metadata={"v": 1}).memory
    first_seq = mw.history(memory.id)[-1].seq
    between = datetime.now(UTC)
    mw.update(memory.id, metadata={"v": 2, "who": "ops"})
    history = mw.history(memory.id)
    assert history[-1].before["metadata"] == {"v": 1}
    assert history[-1].after["metadata"] == {"v": 2, "who": "ops"}
    changes = {c.field: (c.before, c.after) for c in mw.diff(memory.id, first_seq, history[-1].seq)}
    assert changes["metadata"] == ({"v": 1}, {"v": 2, "who": "ops"})
    assert mw.as_of(memory.id, between)["metadata"] == {"v": 1}  # type: ignore[index]
    reverted = mw.revert(memory.id, first_seq)
    assert reverted.meta == {"v": 1} and mw.get(memory.id).meta == {"v": 1}
    report = mw.integrity_check(full=True)  # the replay of its ledger matches the row
    assert not [f for f in report.findings if f.check.startswith("audit_gap")]


def test_raw_edit_of_metadata_is_tampering_and_fix_restores_it(mw: Memwarden) -> None:
    memory = mw.remember("atlas", "Launch is in March", status="active", metadata={"a": 1}).memory
    other = mw.remember("atlas", "Landing is in May", status="active").memory
    raw(mw, "UPDATE memories SET metadata = :m WHERE id = :i", m='{"a":2}', i=memory.id)
    raw(mw, "UPDATE memories SET metadata = :m WHERE id = :i", m="{broken", i=other.id)
    for memory_id in (memory.id, other.id):
        with pytest.raises(TamperedRowError):
            mw.get(memory_id)
        assert mw.get(memory_id, include_tampered=True).tampered
    assert mw.recall("launch", "atlas") == []
    assert mw.recall("launch", "atlas", where=["a=2"]) == []  # invalid JSON breaks no query
    scan = mw.integrity_check(full=True)  # the ledger replay sees it too
    gaps = [f for f in scan.findings if f.check == "audit_gap_replay"]
    assert gaps and "(metadata)" in gaps[0].message
    report = mw.integrity_check(fix=True)
    assert any(r.check == "tampered_memories" for r in report.repairs)
    assert mw.get(memory.id).meta == {"a": 1}
    assert mw.get(other.id).meta == {}


def test_rows_without_metadata_keep_their_mac_shape(mw: Memwarden) -> None:
    """A NULL metadata is left out of the MAC's message: a pre-0017 row's MAC stays valid."""
    memory = mw.remember("atlas", "A plain fact", status="active").memory
    macs = mw.runtime.guard.macs
    before_0017 = tuple(getattr(memory, name) for name in MemoryMacFields._fields[:-1])
    assert memory.mac == macs.mac("memory", before_0017)
    tagged = mw.remember("atlas", "A tagged fact", status="active", metadata={"a": 1}).memory
    without = tuple(getattr(tagged, name) for name in MemoryMacFields._fields[:-1])
    assert tagged.mac != macs.mac("memory", without)  # the metadata is covered


def test_erase_blanks_metadata(mw: Memwarden) -> None:
    memory = mw.remember("atlas", "Alice's phone is 555", metadata={"who": "Alice"}).memory
    mw.erase(memory.id, reason="asked")
    with mw.store.read() as conn:
        stored = conn.execute(
            sa.text("SELECT metadata FROM memories WHERE id = :i"), {"i": memory.id}
        )
        assert stored.scalar_one() is None


# -- ranking by recency and importance ---------------------------------------------------------
def test_rank_by_recency_and_importance_change_the_order(mw: Memwarden) -> None:
    strong = mw.remember(
        "atlas", "fuel budget fuel budget fuel", status="active", metadata={"importance": 0.1}
    ).memory
    weak = mw.remember(
        "atlas", "the fuel budget was revised", status="active", metadata={"importance": 1}
    ).memory
    raw_age(mw, strong.id, datetime.now(UTC) - timedelta(days=365))
    relevance = [h.id for h in mw.recall("fuel budget", "atlas", include_chunks=False)]
    assert relevance[:2] == [strong.id, weak.id]
    recency = [h.id for h in mw.recall("fuel budget", "atlas", rank_by="recency")]
    assert recency[:2] == [weak.id, strong.id]
    importance = [h.id for h in mw.recall("fuel budget", "atlas", rank_by="importance")]
    assert importance[:2] == [weak.id, strong.id]
    with pytest.raises(InvalidInputError):
        mw.recall("fuel", "atlas", rank_by="popularity")


def raw_age(mw: Memwarden, memory_id: int, when: datetime) -> None:
    """Set a memory's updated_at in the past and give it the MAC it would have had (a test's
    stand-in for a memory last touched a year ago)."""
    from dataclasses import replace

    from memwarden.db import schema

    memory = replace(mw.get(memory_id), updated_at=when)
    mac = mw.runtime.guard.macs.memory(memory)
    table = schema.memories
    with mw.store.write() as unit:
        unit.conn.execute(
            table.update().where(table.c.id == memory_id).values(updated_at=when, mac=mac)
        )


def test_semantic_recall_filters_the_vectors_before_the_nearest_are_taken(
    settings: Settings,
) -> None:
    """Meaning alone (no word in common): the vectors of memories that do not match are masked
    before the nearest are cut, so a tagged memory far down the list still comes back."""
    from recall_support import with_model

    with Memwarden.init(with_model(settings)) as mw:
        mw.add_project("p")
        close = [
            "The user is pescatarian and avoids red meat.",
            "The user eats fish but never beef.",
            "The user follows a vegetarian diet.",
        ]
        for text in close:
            mw.remember("p", text, status="active", metadata={"kind": "diet"})
        far = mw.remember(
            "p", "The user likes spicy dishes.", status="active", metadata={"kind": "taste"}
        ).memory
        assert mw.wait_for_embeddings(60)
        query = "what food does the user eat"
        plain = mw.recall_detailed(query, "p", k=1, mode="semantic")
        assert plain.mode_used == "semantic" and plain.hits[0].id != far.id
        found = mw.recall_detailed(query, "p", k=1, mode="semantic", where=["kind=taste"])
        assert [h.id for h in found.hits] == [far.id]
        both = mw.recall_detailed(query, "p", k=5, where={"kind": "diet"})
        assert len(both.hits) == 3 and far.id not in [h.id for h in both.hits]


def test_a_superseding_memory_keeps_the_metadata_of_the_fact_it_corrects(mw: Memwarden) -> None:
    old = mw.remember("atlas", "Launch in March", status="active", metadata={"team": "ops"}).memory
    _, successor = mw.supersede(old.id, content="Launch in April")
    assert successor.meta == {"team": "ops"}
    assert mw.history(successor.id)[0].after["metadata"] == {"team": "ops"}
