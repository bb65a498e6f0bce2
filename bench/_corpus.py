"""A synthetic, deterministic corpus: statements over a Zipf vocabulary, and questions about it.

Real English function words head the vocabulary, so "the", "of", "what" and "is" land in most
statements and most questions: the hard case for ranked full-text search. The tail is made of
invented words, so a word's rank alone fixes how common it is.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, insert, select, update

from memwarden import Memwarden
from memwarden.core.text import content_hash
from memwarden.db import schema

COMMON = (
    "the of and to a in is it that for on was with as be at by this we from or are not have an "
    "but what which when how our will can all has their should does did where who why use team "
    "project new time after before about into more than only also then must need"
).split()
TYPES = ("knowledge", "project", "preference", "episodic", "identity", "adaptation")
QUESTIONS = (
    "what is the {0} of the {1}?",
    "how does the {0} {1} work?",
    "when did we {0} the {1} {2}?",
    "which {0} should the {1} use for {2}?",
    "why is the {0} {1}?",
    "what did the team decide about {0} and {1}?",
    "where is the {0} for the {1} {2}?",
    "who owns the {0} {1}?",
)
SYLLABLES = [c + v for c in "bdfgklmnprstvz" for v in "aeiou"] + ["ka", "lo", "mi", "sun", "tor"]
EPOCH = datetime(2025, 1, 1, tzinfo=UTC)


class Vocabulary:
    def __init__(self, size: int, rng: random.Random, exponent: float = 1.0) -> None:
        words = list(COMMON)
        seen = set(words)
        while len(words) < size:
            word = "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4)))
            if word not in seen:
                seen.add(word)
                words.append(word)
        self.words = words
        self.cumulative = list(itertools.accumulate(1 / (r + 1) ** exponent for r in range(size)))

    def sample(self, rng: random.Random, k: int) -> list[str]:
        return rng.choices(self.words, cum_weights=self.cumulative, k=k)

    def band(self, rng: random.Random, low: int, high: int) -> str:
        """A word whose rank lies in [low, high), log-uniformly: every order of frequency."""
        rank = int(low * (high / low) ** rng.random())
        return self.words[min(rank, len(self.words) - 1)]


@dataclass(frozen=True)
class Planted:
    """A question with exactly one intended answer among the statements."""

    question: str
    answer: str


@dataclass
class Corpus:
    statements: list[str]
    chunks: list[str]
    questions: list[str]
    planted: list[Planted]


def statement(vocab: Vocabulary, rng: random.Random) -> str:
    words = vocab.sample(rng, rng.randint(8, 24))
    return " ".join(words).capitalize() + "."


def question(vocab: Vocabulary, rng: random.Random) -> str:
    template = rng.choice(QUESTIONS)
    words = [w for w in vocab.sample(rng, 6) if w not in COMMON][:3]
    while len(words) < 3:
        words.append(vocab.band(rng, len(COMMON), 400))
    return template.format(*words).capitalize()


def planted(vocab: Vocabulary, rng: random.Random, seen: set[str]) -> Planted:
    """Three topic words from every band of frequency, from common (rank 40) to rare."""
    while True:
        topic = [vocab.band(rng, 40, len(vocab.words)) for _ in range(3)]
        filler = vocab.sample(rng, rng.randint(4, 10))
        answer = (
            " ".join(["the", topic[0], "of", "the", topic[1], topic[2], *filler]).capitalize() + "."
        )
        if answer not in seen:
            seen.add(answer)
            template = rng.choice(QUESTIONS[:2] + QUESTIONS[6:])
            return Planted(template.format(*topic).capitalize(), answer)


def build(
    statements: int, questions: int, planted_count: int, seed: int, chunks: int = 0
) -> Corpus:
    rng = random.Random(seed)
    vocab = Vocabulary(20_000, rng)
    seen: set[str] = set()
    texts: list[str] = []
    while len(texts) < statements - planted_count:
        text = statement(vocab, rng)
        if text not in seen:
            seen.add(text)
            texts.append(text)
    plants = [planted(vocab, rng, seen) for _ in range(planted_count)]
    texts.extend(p.answer for p in plants)
    rng.shuffle(texts)
    chunk_texts = [
        " ".join(statement(vocab, rng) for _ in range(rng.randint(3, 6))) for _ in range(chunks)
    ]
    return Corpus(texts, chunk_texts, [question(vocab, rng) for _ in range(questions)], plants)


def memory_rows(texts: list[str], project: str = "atlas") -> Iterator[dict[str, Any]]:
    for index, text in enumerate(texts):
        moment = EPOCH + timedelta(seconds=index)
        yield {
            "project": project,
            "type": TYPES[index % len(TYPES)],
            "content": text,
            "content_hash": content_hash(text),
            "confidence": 0.6,
            "status": "active",
            "source_chunk_id": None,
            "reinforcement_count": 0,
            "superseded_by": None,
            "created_at": moment,
            "updated_at": moment,
            "last_reinforced_at": None,
        }


def sign_memories(mw: Memwarden, batch: int = 5_000) -> None:
    """Give rows inserted behind memwarden's back their row MAC, as its own writes would:
    reads withhold a memory without one as tampered."""
    m = schema.memories
    macs = mw.runtime.guard.macs
    with mw.store.engine.begin() as conn:
        rows = conn.execute(select(m).where(m.c.mac.is_(None))).all()
        update_mac = update(m).where(m.c.id == bindparam("row_id")).values(mac=bindparam("row_mac"))
        signed = [{"row_id": row.id, "row_mac": macs.memory(row)} for row in rows]
        for start in range(0, len(signed), batch):
            conn.execute(update_mac, signed[start : start + batch])


def bulk_load(mw: Memwarden, corpus: Corpus, batch: int = 5_000, project: str = "atlas") -> None:
    """Insert the corpus through the store's engine in large transactions (no ledger rows).

    The full-text index stays in step on its own: triggers on SQLite, the generated tsvector
    column and its GIN index on PostgreSQL."""
    rows = list(memory_rows(corpus.statements, project))
    with mw.store.engine.begin() as conn:
        for start in range(0, len(rows), batch):
            conn.execute(insert(schema.memories), rows[start : start + batch])
        if corpus.chunks:
            document_id = conn.execute(
                insert(schema.documents)
                .values(
                    project=project,
                    uri="bench://corpus.md",
                    title="bench corpus",
                    content_hash="0" * 64,
                    size_bytes=sum(len(c) for c in corpus.chunks),
                    created_at=EPOCH,
                    updated_at=EPOCH,
                )
                .returning(schema.documents.c.id)
            ).scalar_one()
            chunk_rows = [
                {
                    "document_id": document_id,
                    "project": project,
                    "ordinal": ordinal,
                    "heading": f"Section {ordinal}",
                    "content": text,
                    "created_at": EPOCH,
                }
                for ordinal, text in enumerate(corpus.chunks)
            ]
            for start in range(0, len(chunk_rows), batch):
                conn.execute(insert(schema.source_chunks), chunk_rows[start : start + batch])
    sign_memories(mw)
    settle(mw, "memories", "source_chunks")


def settle(mw: Memwarden, *tables: str) -> None:
    """PostgreSQL: vacuum and analyze tables just bulk-written, as autovacuum soon would. A
    timed phase then measures the store as it runs, not autovacuum's first pass over 100k
    fresh rows landing in the middle of it (which made two runs of the same code differ by
    half)."""
    if mw.store.dialect != "postgresql":
        return
    with mw.store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        for table in tables:
            conn.exec_driver_sql(f"VACUUM ANALYZE {table}")
