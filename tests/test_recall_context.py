"""Full-text recall and the context pack, on both engines."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core_support import index_matches, raises_and_changes_nothing
from memwarden import Memwarden
from memwarden.core.recall_context import ContextItem, ContextPack, RenderedSize
from memwarden.errors import InvalidInputError, NotFoundError

BURN = "The orbital insertion burn lasts ninety seconds"
INSERTION = "Payload insertion happens after fairing separation"
COFFEE = "Coffee is brewed at nine in the control room"


def active(mw: Memwarden, content: str, type_: str = "knowledge", project: str = "atlas") -> int:
    return mw.remember(project, content, type_, status="active").memory.id


def test_recall_ranks_active_memories_with_score_and_provenance(mw: Memwarden) -> None:
    burn, insertion, coffee = (active(mw, text) for text in (BURN, INSERTION, COFFEE))
    hits = mw.recall("orbital insertion burn", "atlas")
    assert [h.id for h in hits] == [burn, insertion]
    assert coffee not in [h.id for h in hits]
    assert all(h.kind == "memory" for h in hits)
    assert hits[0].score == pytest.approx(1.0)
    assert 0 < hits[1].score < hits[0].score
    top = hits[0]
    assert (top.content, top.project) == (BURN, "atlas")
    assert top.provenance["memory_id"] == burn
    assert top.provenance["type"] == "knowledge"
    assert top.provenance["status"] == "active"
    assert top.provenance["reinforcement_count"] == 0
    assert top.provenance["source_chunk_id"] is None and top.provenance["document"] is None
    assert top.provenance["updated_at"] == mw.get(burn).updated_at.isoformat()


def test_recall_is_case_and_punctuation_insensitive(mw: Memwarden) -> None:
    burn = active(mw, BURN)
    assert [h.id for h in mw.recall("ORBITAL, burn?!", "atlas")] == [burn]


def test_recall_returns_only_active_memories(mw: Memwarden) -> None:
    word = "gyroscope"
    live = active(mw, f"The {word} spins up first")
    candidate = mw.remember("atlas", f"The {word} is calibrated").memory.id
    rejected = mw.remember("atlas", f"The {word} is blue").memory.id
    mw.reject(rejected)
    invalid = active(mw, f"The {word} is made of wood")
    mw.invalidate(invalid)
    old = active(mw, f"The {word} weighs two kilos")
    _, new = mw.supersede(old, content=f"The {word} weighs three kilos")
    expired = mw.remember("atlas", f"The {word} hums").memory.id
    mw.expire(expired)
    # every one of them is in the index: the status filter does the work
    assert {live, candidate, rejected, invalid, old, new.id, expired} <= index_matches(mw, word)
    assert {h.id for h in mw.recall(word, "atlas")} == {live, new.id}
    mw.promote(candidate)
    assert {h.id for h in mw.recall(word, "atlas")} == {live, new.id, candidate}


def test_recall_filters_by_project_and_type(mw: Memwarden) -> None:
    mw.add_project("borealis")
    a = active(mw, "The heat shield is ablative", "knowledge")
    b = active(mw, "Ada prefers the heat shield review on Mondays", "preference")
    c = active(mw, "The heat shield on Borealis is ceramic", "knowledge", "borealis")
    assert {h.id for h in mw.recall("heat shield", "atlas")} == {a, b}
    assert {h.id for h in mw.recall("heat shield", "borealis")} == {c}
    assert {h.id for h in mw.recall("heat shield")} == {a, b, c}
    assert [h.id for h in mw.recall("heat shield", "atlas", types=["preference"])] == [b]
    assert {h.id for h in mw.recall("heat shield", types=["knowledge"])} == {a, c}
    assert {h.id for h in mw.recall("heat shield", "atlas", types=["knowledge", "preference"])} == {
        a,
        b,
    }
    assert len(mw.recall("heat shield", "atlas", k=1)) == 1
    assert mw.recall("nonexistentword", "atlas") == []


def test_recall_includes_chunks_with_their_provenance(mw: Memwarden) -> None:
    outcome = mw.ingest_text(
        "atlas",
        "docs/range.md",
        "# Range safety\n\nThe range safety officer can abort the flight.",
        title="range",
    )
    memory = active(mw, "The range safety officer is Grace")
    hits = mw.recall("range safety officer", "atlas")
    kinds = {h.kind: h for h in hits}
    assert set(kinds) == {"memory", "chunk"}
    assert hits[0].kind == "memory" and hits[0].id == memory  # a kept statement ranks first
    chunk = kinds["chunk"]
    assert 0 < chunk.score <= 1
    assert chunk.provenance["document_id"] == outcome.document_id
    assert chunk.provenance["document"] == "docs/range.md"
    assert chunk.provenance["heading"] == "Range safety"
    assert chunk.provenance["ordinal"] == 0
    assert chunk.provenance["chunk_id"] == chunk.id
    assert [h.kind for h in mw.recall("range safety officer", "atlas", include_chunks=False)] == [
        "memory"
    ]
    # headings are searchable too
    assert any(h.kind == "chunk" for h in mw.recall("safety", "atlas"))


def test_a_memory_citing_a_chunk_names_its_document(mw: Memwarden) -> None:
    mw.ingest_text("atlas", "docs/fuel.md", "Fuel is loaded at T-2h.")
    chunk_id = next(h.id for h in mw.recall("fuel", "atlas") if h.kind == "chunk")
    memory = mw.remember("atlas", "Fuel loading starts two hours out", source_chunk_id=chunk_id)
    mw.promote(memory.memory.id)
    hit = next(h for h in mw.recall("fuel loading", "atlas") if h.kind == "memory")
    assert hit.provenance["source_chunk_id"] == chunk_id
    assert hit.provenance["document"] == "docs/fuel.md"


def test_the_index_follows_updates_and_erasure(mw: Memwarden) -> None:
    memory = active(mw, "The antenna points toward Goldstone")
    assert [h.id for h in mw.recall("goldstone", "atlas")] == [memory]
    mw.update(memory, content="The antenna points toward Canberra")
    assert mw.recall("goldstone", "atlas") == []
    assert index_matches(mw, "goldstone") == set()
    assert [h.id for h in mw.recall("canberra", "atlas")] == [memory]
    mw.erase(memory, "privacy request")
    assert mw.recall("canberra", "atlas") == []
    assert index_matches(mw, "canberra") == set()
    assert index_matches(mw, "antenna") == set()


def test_the_index_follows_a_revert(mw: Memwarden) -> None:
    memory = active(mw, "The beacon blinks red")
    version = mw.history(memory)[-1].seq
    mw.update(memory, content="The beacon blinks green")
    mw.revert(memory, version)
    assert [h.id for h in mw.recall("red", "atlas")] == [memory]
    assert mw.recall("green", "atlas") == []


def test_recall_on_common_words_still_finds_the_best_match(mw: Memwarden) -> None:
    for i in range(30):
        active(mw, f"The mission log entry number {i} is about the mission")
    target = active(mw, "The mission log mentions the rare word quasar")
    hits = mw.recall("the mission quasar", "atlas", k=5)
    assert hits[0].id == target
    assert len(hits) == 5


def test_recall_bad_input(mw: Memwarden) -> None:
    for query in ("", "   "):
        raises_and_changes_nothing(mw, InvalidInputError, lambda q=query: mw.recall(q, "atlas"))
    raises_and_changes_nothing(mw, InvalidInputError, lambda: mw.recall("x" * 2001, "atlas"))
    for k in (0, 101):
        raises_and_changes_nothing(mw, InvalidInputError, lambda k=k: mw.recall("x", "atlas", k=k))
    raises_and_changes_nothing(mw, InvalidInputError, lambda: mw.recall("x", types=["foo"]))
    error = raises_and_changes_nothing(mw, NotFoundError, lambda: mw.recall("x", "ghost"))
    assert "memwarden project add ghost" in str(error)


def test_recall_query_syntax_is_never_interpreted(mw: Memwarden) -> None:
    memory = active(mw, "Quotes \"and\" 'quote' stars * and NEAR(x y) and col:umn are plain")
    for query in ('"and"', "stars *", "NEAR(x y)", "col:umn", "a & b | !c", "'quote'", "\\"):
        hits = mw.recall(query, "atlas")  # never a syntax error
        if query not in ("a & b | !c", "\\"):
            assert memory in [h.id for h in hits], query


# -- context pack ------------------------------------------------------------------------------


def make_context_world(mw: Memwarden) -> dict[str, int]:
    mw.set_state("atlas", "schedule", "launch", "March 3", source="meeting 12")
    mw.set_state("atlas", "team", "lead", "Ada")
    burn = active(mw, BURN)
    other = active(mw, "The insertion burn uses the upper stage")
    active(mw, COFFEE)
    mw.add_project("borealis")
    mw.set_state("borealis", "schedule", "launch", "June")
    active(mw, "The borealis insertion burn is short", project="borealis")
    mw.ingest_text(
        "atlas", "docs/burn.md", "# Burn plan\n\nThe insertion burn starts at T+9 minutes."
    )
    return {"burn": burn, "other": other}


def test_context_pack_order_and_provenance(mw: Memwarden) -> None:
    ids = make_context_world(mw)
    pack = mw.context("insertion burn", "atlas", budget=4000)
    kinds = [item.kind for item in pack.items]
    assert kinds == ["state", "state", "memory", "memory", "chunk"]
    assert pack.items[0].text == "- schedule/launch: March 3 (source: meeting 12)"
    assert pack.items[0].provenance == {
        "category": "schedule",
        "key": "launch",
        "source": "meeting 12",
    }
    assert pack.items[1].provenance["key"] == "lead"
    memory_ids = {item.provenance["memory_id"] for item in pack.items if item.kind == "memory"}
    assert memory_ids == {ids["burn"], ids["other"]}  # atlas only, active only, matching only
    chunk = pack.items[-1]
    assert chunk.provenance["document"] == "docs/burn.md"
    assert chunk.provenance["heading"] == "Burn plan"
    assert "docs/burn.md" in chunk.text
    assert pack.omitted == 0
    assert pack.used == sum(len(item.text) for item in pack.items) <= pack.budget
    rendered = pack.render()
    assert (
        rendered.index("## Project state")
        < rendered.index("## Verified memories")  # written through the library: a person
        < rendered.index("## Sources")
    )
    assert "June" not in rendered and "Coffee" not in rendered
    data = pack.to_dict()
    assert data["text"] == rendered and len(data["items"]) == 5


def test_context_pack_stays_within_its_budget(mw: Memwarden) -> None:
    make_context_world(mw)
    full = mw.context("insertion burn", "atlas", budget=100_000)
    for budget in (100, 150, 250, 400):
        pack = mw.context("insertion burn", "atlas", budget=budget)
        assert pack.used <= budget
        assert len(pack.render()) <= budget, "the text to paste is over the budget"
        assert len(pack.items) + pack.omitted == len(full.items)
        assert [i.kind for i in pack.items] == sorted(
            (i.kind for i in pack.items), key=["state", "memory", "chunk"].index
        )
    assert mw.context("insertion burn", "atlas", budget=100).omitted > 0


def test_context_bad_input(mw: Memwarden) -> None:
    for budget in (99, 1_000_001):
        raises_and_changes_nothing(
            mw, InvalidInputError, lambda b=budget: mw.context("burn", "atlas", budget=b)
        )
    raises_and_changes_nothing(mw, InvalidInputError, lambda: mw.context("  ", "atlas"))
    error = raises_and_changes_nothing(mw, NotFoundError, lambda: mw.context("burn", "ghost"))
    assert "memwarden project add ghost" in str(error)


def test_context_with_nothing_matching_still_gives_the_state(mw: Memwarden) -> None:
    mw.set_state("atlas", "schedule", "launch", "March 3")
    pack = mw.context("zebra", "atlas")
    assert [item.kind for item in pack.items] == ["state"]


def test_recall_of_non_ascii_words(mw: Memwarden) -> None:
    street = active(mw, "Die Straße zum Startplatz ist gesperrt")
    cafe = active(mw, "Le café de la salle de contrôle")
    assert [h.id for h in mw.recall("straße", "atlas")] == [street]
    assert [h.id for h in mw.recall("STRASSE gesperrt", "atlas")] == [street]  # via 'gesperrt'
    assert [h.id for h in mw.recall("Café", "atlas")] == [cafe]
    assert [h.id for h in mw.recall("contrôle", "atlas")] == [cafe]


@given(
    st.lists(
        st.tuples(st.sampled_from(["state", "memory", "chunk"]), st.text(max_size=40)),
        max_size=30,
    ),
    st.integers(min_value=0, max_value=600),
)
def test_the_pack_size_is_counted_as_it_renders(items: list[tuple[str, str]], budget: int) -> None:
    """The greedy packing counts the rendered length without rendering: the count must be the
    length of the text, and what is kept must fit while each item left out would not."""
    sized = RenderedSize()
    pack = ContextPack("q", "atlas", budget)
    for kind, text in items:
        item = ContextItem(kind, text, {})
        assert sized.with_item(item) == len(
            ContextPack("q", "atlas", budget, [*pack.items, item]).render()
        )
        if sized.with_item(item) <= budget:
            sized.add(item)
            pack.items.append(item)
    assert sized.size() == len(pack.render()) <= budget


def test_a_large_budget_takes_every_state_entry_that_fits(mw: Memwarden) -> None:
    for index in range(500):
        mw.set_state("atlas", "config", f"key-{index:04d}", "v" * 200)
    pack = mw.context("anything at all", "atlas", budget=1_000_000)
    assert [item.kind for item in pack.items] == ["state"] * 500 and pack.omitted == 0
    small = mw.context("anything at all", "atlas", budget=5_000)
    assert (
        len(small.render())
        <= 5_000
        < len(small.render()) + len(pack.items[len(small.items)].text) + 1
    )
    assert small.omitted == 500 - len(small.items)
