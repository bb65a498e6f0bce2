"""Recall that understands: stemmed full text and stored vectors.

- SQLite: the FTS5 indexes are rebuilt with the ``porter`` tokenizer ("prefers" finds
  "prefer"); PostgreSQL: the generated ``tsvector`` columns use ``memwarden_english`` (the
  english stemmer, no stop words dropped).
- ``embeddings``: one vector per (kind, item, model), stored portably as float32 bytes;
  ``vector_generation``: one row every vector write moves on, so each process knows when its
  cached matrix is out of date.

Plain SQL only for the full-text part (the SQLite driver may change under it).

Revision ID: 0013_recall
Revises: 0001
Create Date: 2026-12-03
"""

from __future__ import annotations

from alembic import op
from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Integer,
    LargeBinary,
    String,
    UniqueConstraint,
)

revision = "0013_recall"
down_revision = "0001"
branch_labels = None
depends_on = None

Id = BigInteger().with_variant(Integer(), "sqlite")


def _sqlite_fts(tokenize: str) -> list[str]:
    """Drop and recreate both FTS5 indexes (and their vocabularies and triggers) with the given
    tokenizer, then rebuild them from their content tables."""
    return [
        "DROP TRIGGER IF EXISTS memories_fts_ai",
        "DROP TRIGGER IF EXISTS memories_fts_ad",
        "DROP TRIGGER IF EXISTS memories_fts_au",
        "DROP TABLE IF EXISTS memories_fts_vocab",
        "DROP TABLE IF EXISTS memories_fts",
        "DROP TRIGGER IF EXISTS chunks_fts_ai",
        "DROP TRIGGER IF EXISTS chunks_fts_ad",
        "DROP TRIGGER IF EXISTS chunks_fts_au",
        "DROP TABLE IF EXISTS chunks_fts_vocab",
        "DROP TABLE IF EXISTS chunks_fts",
        f"""CREATE VIRTUAL TABLE memories_fts USING fts5(
            content, content='memories', content_rowid='id', tokenize='{tokenize}')""",
        "CREATE VIRTUAL TABLE memories_fts_vocab USING fts5vocab(memories_fts, 'row')",
        """CREATE TRIGGER memories_fts_ai AFTER INSERT ON memories BEGIN
            INSERT INTO memories_fts(rowid, content) VALUES (new.id, new.content); END""",
        """CREATE TRIGGER memories_fts_ad AFTER DELETE ON memories BEGIN
            INSERT INTO memories_fts(memories_fts, rowid, content)
            VALUES ('delete', old.id, old.content); END""",
        """CREATE TRIGGER memories_fts_au AFTER UPDATE OF content ON memories BEGIN
            INSERT INTO memories_fts(memories_fts, rowid, content)
            VALUES ('delete', old.id, old.content);
            INSERT INTO memories_fts(rowid, content) VALUES (new.id, new.content); END""",
        f"""CREATE VIRTUAL TABLE chunks_fts USING fts5(
            heading, content, content='source_chunks', content_rowid='id',
            tokenize='{tokenize}')""",
        "CREATE VIRTUAL TABLE chunks_fts_vocab USING fts5vocab(chunks_fts, 'row')",
        """CREATE TRIGGER chunks_fts_ai AFTER INSERT ON source_chunks BEGIN
            INSERT INTO chunks_fts(rowid, heading, content)
            VALUES (new.id, new.heading, new.content); END""",
        """CREATE TRIGGER chunks_fts_ad AFTER DELETE ON source_chunks BEGIN
            INSERT INTO chunks_fts(chunks_fts, rowid, heading, content)
            VALUES ('delete', old.id, old.heading, old.content); END""",
        """CREATE TRIGGER chunks_fts_au AFTER UPDATE ON source_chunks BEGIN
            INSERT INTO chunks_fts(chunks_fts, rowid, heading, content)
            VALUES ('delete', old.id, old.heading, old.content);
            INSERT INTO chunks_fts(rowid, heading, content)
            VALUES (new.id, new.heading, new.content); END""",
        "INSERT INTO memories_fts(memories_fts) VALUES ('rebuild')",
        "INSERT INTO chunks_fts(chunks_fts) VALUES ('rebuild')",
    ]


# The english stemmer without a stop-word list: "prefers" finds "prefer", and a query made of
# common words ("and", "the") still finds them, as FTS5's porter tokenizer does on SQLite.
POSTGRES_CONFIG = [
    """CREATE TEXT SEARCH DICTIONARY memwarden_english_stem
        (TEMPLATE = snowball, LANGUAGE = english)""",
    "CREATE TEXT SEARCH CONFIGURATION memwarden_english (COPY = english)",
    """ALTER TEXT SEARCH CONFIGURATION memwarden_english
        ALTER MAPPING FOR asciiword, asciihword, hword_asciipart, word, hword, hword_part
        WITH memwarden_english_stem""",
]
POSTGRES_CONFIG_DOWN = [
    "DROP TEXT SEARCH CONFIGURATION IF EXISTS memwarden_english",
    "DROP TEXT SEARCH DICTIONARY IF EXISTS memwarden_english_stem",
]


def _postgres_fts(config: str) -> list[str]:
    return [
        "DROP INDEX IF EXISTS ix_memories_content_tsv",
        "ALTER TABLE memories DROP COLUMN IF EXISTS content_tsv",
        f"""ALTER TABLE memories ADD COLUMN content_tsv tsvector
            GENERATED ALWAYS AS (to_tsvector('{config}', content)) STORED""",
        "CREATE INDEX ix_memories_content_tsv ON memories USING GIN (content_tsv)",
        "DROP INDEX IF EXISTS ix_source_chunks_content_tsv",
        "ALTER TABLE source_chunks DROP COLUMN IF EXISTS content_tsv",
        f"""ALTER TABLE source_chunks ADD COLUMN content_tsv tsvector
            GENERATED ALWAYS AS (to_tsvector('{config}', heading || ' ' || content)) STORED""",
        "CREATE INDEX ix_source_chunks_content_tsv ON source_chunks USING GIN (content_tsv)",
    ]


STEMMED_SQLITE = "porter unicode61 remove_diacritics 2"
PLAIN_SQLITE = "unicode61 remove_diacritics 2"


def _fts(up: bool) -> list[str]:
    if op.get_bind().dialect.name == "sqlite":
        return _sqlite_fts(STEMMED_SQLITE if up else PLAIN_SQLITE)
    if up:
        return POSTGRES_CONFIG + _postgres_fts("memwarden_english")
    return _postgres_fts("simple") + POSTGRES_CONFIG_DOWN


def upgrade() -> None:
    for statement in _fts(up=True):
        op.execute(statement)
    op.create_table(
        "embeddings",
        Column("id", Id, primary_key=True, autoincrement=True),
        Column("kind", String(10), nullable=False),
        Column("item_id", BigInteger, nullable=False),
        Column("project", String(100), nullable=False),
        Column("model", String(200), nullable=False),
        Column("dimension", Integer, nullable=False),
        Column("content_hash", String(64), nullable=False),
        Column("vector", LargeBinary, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False),
        UniqueConstraint("kind", "item_id", "model", name="uq_embeddings_item_model"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_embeddings_model_kind_id", "embeddings", ["model", "kind", "id"])
    op.create_table(
        "vector_generation",
        Column("id", Integer, primary_key=True),
        Column("generation", BigInteger, nullable=False),
    )
    op.execute("INSERT INTO vector_generation (id, generation) VALUES (1, 0)")


def downgrade() -> None:
    op.drop_table("vector_generation")
    op.drop_index("ix_embeddings_model_kind_id", table_name="embeddings")
    op.drop_table("embeddings")
    for statement in _fts(up=False):
        op.execute(statement)
