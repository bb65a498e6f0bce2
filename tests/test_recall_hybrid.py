"""Recall by meaning and words: the local model, stored vectors, the three modes, stemming,
consistency across processes, erase, rebuild, the integrity check, and every fallback."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
from pydantic import SecretStr

from memwarden import Memwarden, Settings
from memwarden.core import embedding
from memwarden.core.embedding import minilm
from memwarden.db import schema
from memwarden.errors import InvalidInputError
from memwarden.observability.faults import active_faults, faults
from recall_support import embeddings_server, remember_all, with_model

FACTS = [
    "The user is pescatarian and avoids red meat.",
    "The user prefers dark mode in every editor.",
    "The rocket launch moved to April.",
    "The team meets on Tuesdays at ten.",
    "Current sprint restrictions: no deploys on Fridays.",
]


@pytest.fixture(autouse=True)
def _clean_faults() -> Iterator[None]:
    faults.reset()
    yield
    faults.reset()


@pytest.fixture
def mw(settings: Settings) -> Iterator[Memwarden]:
    with Memwarden.init(with_model(settings)) as opened:
        opened.add_project("p")
        yield opened


def test_meaning_finds_a_paraphrase_that_words_cannot(mw: Memwarden) -> None:
    diet, *_ = remember_all(mw, "p", FACTS)
    hybrid = mw.recall_detailed("what food does the user eat", "p", k=3)
    assert (hybrid.mode, hybrid.mode_used, hybrid.fallback) == ("hybrid", "hybrid", None)
    assert hybrid.hits[0].id == diet
    semantic = mw.recall_detailed("vegetarian diet", "p", k=3, mode="semantic")
    assert semantic.hits[0].id == diet
    text = mw.recall_detailed("vegetarian diet", "p", k=3, mode="text")
    assert diet not in [h.id for h in text.hits]  # no word in common
    # A lexical query stays as text ranks it.
    assert mw.recall("rocket launch", "p", k=1)[0].content == FACTS[2]
    # Unrelated memories are not padded in by meaning alone.
    assert len(mw.recall("rocket launch", "p", k=5, mode="hybrid")) < len(FACTS)


def test_each_vector_is_stored_with_its_model_and_dimension(mw: Memwarden) -> None:
    ids = remember_all(mw, "p", FACTS[:2])
    with mw.store.read() as conn:
        rows = conn.execute(sa.select(schema.embeddings).order_by(schema.embeddings.c.item_id))
        rows = rows.all()
    assert [r.item_id for r in rows] == ids
    for row in rows:
        assert (row.kind, row.model, row.dimension) == ("memory", minilm.MODEL_ID, 384)
        vector = np.frombuffer(row.vector, dtype="<f4")
        assert vector.shape == (384,) and abs(float(np.linalg.norm(vector)) - 1.0) < 1e-4


def test_chunks_are_embedded_and_replaced_on_reingest(mw: Memwarden) -> None:
    mw.ingest_text("p", "diet.md", "# Diet\n\nThe user eats fish but never meat.")
    assert mw.wait_for_embeddings(60)
    hit = mw.recall("seafood", "p", k=1, mode="semantic")[0]
    assert hit.kind == "chunk" and "fish" in hit.content
    mw.ingest_text("p", "diet.md", "# Travel\n\nThe user flies economy.")
    assert mw.wait_for_embeddings(60)
    status = mw.embedding_status()
    assert (status.chunk_vectors, status.chunks, status.orphans) == (1, 1, 0)
    assert all("fish" not in h.content for h in mw.recall("seafood", "p", mode="semantic"))


def test_stemming_matches_word_forms(settings: Settings) -> None:
    with Memwarden.init(settings) as mw:  # full text alone: the suite's default
        mw.add_project("p")
        prefers = mw.remember("p", "The user prefers tea", status="active").memory.id
        launches = mw.remember("p", "Launches happen at dawn", status="active").memory.id
        assert [h.id for h in mw.recall("prefer", "p")] == [prefers]
        assert [h.id for h in mw.recall("launching", "p")] == [launches]
        found = mw.recall_detailed("prefer", "p")
        assert found.mode_used == "text" and "MEMWARDEN_EMBEDDER=none" in (found.fallback or "")


def test_another_process_sees_new_and_erased_vectors(mw: Memwarden) -> None:
    remember_all(mw, "p", FACTS[1:])
    with Memwarden(mw.settings) as other:
        before = other.recall("vegetarian diet", "p", k=3, mode="semantic")
        assert FACTS[0] not in [h.content for h in before]
        (diet,) = remember_all(mw, "p", FACTS[:1])  # written by the first store
        assert other.recall("vegetarian diet", "p", k=1, mode="semantic")[0].id == diet
        mw.erase(diet, "privacy request")
        assert diet not in [h.id for h in other.recall("vegetarian diet", "p", mode="semantic")]
    with mw.store.read() as conn:
        left = conn.execute(
            sa.select(sa.func.count())
            .select_from(schema.embeddings)
            .where(schema.embeddings.c.item_id == diet)
        ).scalar_one()
    assert left == 0


def test_rebuild_and_integrity_find_and_write_missing_vectors(settings: Settings) -> None:
    with Memwarden.init(settings) as mw:  # no embedder: memories without vectors
        mw.add_project("p")
        for fact in FACTS:
            mw.remember("p", fact, status="active")
        assert mw.recall_health()["default_mode"] == "text"
    with Memwarden(with_model(settings)) as mw:
        status = mw.embedding_status()
        assert len(status.missing_memories) == len(FACTS)
        report = mw.integrity_check()
        vectors = [f for f in report.run.findings if f.check == "vectors"]
        assert vectors and vectors[0].count == len(FACTS)
        fixed = mw.integrity_check(fix=True)
        assert [r.action for r in fixed.repairs if r.check == "vectors"] == ["re-embed"]
        assert not [f for f in fixed.run.findings if f.check.startswith("vectors")]
        assert mw.embedding_status().missing == 0
        # A content change makes a vector stale; rebuild writes it again.
        memory = mw.recall("rocket", "p", k=1)[0].id
        mw.update(memory, content="The rocket launch moved to May.")
        assert mw.wait_for_embeddings(60)
        assert mw.embedding_status().missing == 0
        with mw.store.write() as unit:  # drift: a vector for content no longer there
            unit.conn.execute(
                sa.update(schema.embeddings)
                .where(schema.embeddings.c.item_id == memory)
                .values(content_hash="0" * 64)
            )
        assert mw.embedding_status().missing_memories == [memory]
        done: list[tuple[int, int]] = []
        assert mw.rebuild_index(lambda n, total: done.append((n, total))) == 1
        assert done[-1] == (1, 1) and mw.embedding_status().missing == 0


def test_a_damaged_model_falls_back_to_full_text_and_says_so(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    damaged = tmp_path / "model"
    damaged.mkdir()
    shutil.copy(minilm.model_dir() / "tokenizer.json", damaged / "tokenizer.json")
    real = (minilm.model_dir() / "model.safetensors").read_bytes()
    (damaged / "model.safetensors").write_bytes(real[: len(real) // 2])  # a cut download
    monkeypatch.setattr(minilm, "model_dir", lambda: damaged)
    monkeypatch.setattr(embedding, "_local", None)
    with Memwarden.init(with_model(settings)) as mw:
        mw.add_project("p")
        memory = mw.remember("p", "The user prefers tea", status="active").memory.id
        assert mw.wait_for_embeddings(30)
        found = mw.recall_detailed("prefer tea", "p")
        assert [h.id for h in found.hits] == [memory]  # the request still succeeds
        assert (found.mode, found.mode_used) == ("hybrid", "text")
        assert "sha256" in (found.fallback or "")
        assert [f.key for f in active_faults()] == ["recall.embedder"]
        health = mw.recall_health()
        assert health["default_mode"] == "text" and "sha256" in health["error"]
        assert mw.embedding_status().missing_memories == [memory]  # nothing half-written


def test_openai_compatible_endpoint_on_loopback(settings: Settings) -> None:
    with embeddings_server() as server:
        remote = with_model(
            settings,
            embedder="openai",
            embedder_url=server["url"],
            embedder_model="minilm-test",
            embedder_api_key=SecretStr("sk-test"),
        )
        with Memwarden.init(remote) as mw:
            mw.add_project("p")
            diet, *_ = remember_all(mw, "p", FACTS)
            found = mw.recall_detailed("what food does the user eat", "p", k=1)
            assert found.fallback is None and found.hits[0].id == diet, found
            with mw.store.read() as conn:
                models = set(conn.execute(sa.select(schema.embeddings.c.model)).scalars())
            assert models == {"openai:minilm-test"}
            assert server["auth"][-1] == "Bearer sk-test"
            # The endpoint goes down: recall answers by full text, the fault shows, then clears.
            server["fail"] = True
            down = mw.recall_detailed("rocket launch", "p", k=1)
            assert down.mode_used == "text" and "503" in (down.fallback or "")
            assert down.hits[0].content == FACTS[2]
            assert "recall.embedder" in [f.key for f in active_faults()]
            calls = server["calls"]
            server["fail"] = False
            # Within the retry window the endpoint is not asked again (no timeout per recall).
            assert mw.recall_detailed("rocket launch", "p", k=1).mode_used == "text"
            assert server["calls"] == calls
            mw.runtime.embedders.RETRY_SECONDS = 0.0
            assert mw.recall_detailed("rocket launch", "p", k=1).mode_used == "hybrid"
            assert "recall.embedder" not in [f.key for f in active_faults()]


def test_a_bad_mode_is_refused(mw: Memwarden) -> None:
    with pytest.raises(InvalidInputError, match="mode must be one of"):
        mw.recall("x", "p", mode="fuzzy")
    with pytest.raises(InvalidInputError, match="mode must be one of"):
        mw.context("x", "p", mode="fuzzy")


def test_context_pack_uses_the_same_ranking(mw: Memwarden) -> None:
    diet, *_ = remember_all(mw, "p", FACTS)
    pack = mw.context("what food does the user eat", "p", budget=300)
    memories = [item for item in pack.items if item.kind == "memory"]
    assert memories[0].provenance["memory_id"] == diet
    assert pack.to_dict()["mode_used"] == "hybrid"


def test_a_recalled_change_says_what_it_replaced(settings: Settings) -> None:
    with Memwarden.init(settings) as mw:
        mw.add_project("p")
        old = mw.remember("p", "The launch is in March", status="active").memory.id
        _, new = mw.supersede(old, content="The launch is in April")
        hit = mw.recall("launch", "p")[0]
        assert hit.id == new.id and [h.id for h in mw.recall("launch", "p")] == [new.id]
        (replaced,) = hit.provenance["supersedes"]
        assert replaced["memory_id"] == old and replaced["content"] == "The launch is in March"
        assert replaced["by"] and replaced["at"]
        both = mw.recall("launch", "p", include_superseded=True)
        assert [h.id for h in both] == [new.id, old]
        assert both[1].provenance["status"] == "superseded"
        assert both[1].provenance["replaced"]["by_memory"] == new.id


def test_a_vector_embedded_before_an_erasure_is_never_written_after_it(mw: Memwarden) -> None:
    from memwarden.core import vectors as vector_store
    from memwarden.core.embedding.worker import load_items, store_vectors

    memory = mw.remember("p", "The user's passport number is X123", status="active").memory.id
    assert mw.wait_for_embeddings(60)
    with mw.store.read() as conn:
        ((item_id, project, digest, text),) = load_items(conn, "memory", [memory])
    vector = mw.runtime.embedders.embed([text])[0]  # embedded while the memory still held it
    mw.erase(memory, "privacy request")  # commits between the embedding and its write
    stale = [vector_store.StoredVector(item_id, project, digest, vector)]
    assert store_vectors(mw.store, "memory", minilm.MODEL_ID, stale) == 0
    with mw.store.read() as conn:
        assert conn.execute(sa.select(schema.embeddings.c.id)).all() == []
