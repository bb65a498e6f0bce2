"""Bad input, each with a test: a clear error, and the database exactly as it was."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import sqlalchemy as sa

from core_support import db_state, raises_and_changes_nothing
from memwarden import Memwarden, Settings
from memwarden.db import migrate
from memwarden.db.store import Store
from memwarden.errors import (
    InvalidInputError,
    NotFoundError,
    SchemaMismatchError,
    StorageError,
)


@pytest.fixture
def memory_id(mw: Memwarden) -> int:
    return mw.remember("atlas", "The launch window opens in March").memory.id


# -- content -----------------------------------------------------------------------------------


def test_empty_or_whitespace_content(mw: Memwarden, memory_id: int) -> None:
    mw.promote(memory_id)
    for content in ("", " ", "\n\t  \r\n", "\u3000"):
        error = raises_and_changes_nothing(
            mw, InvalidInputError, lambda c=content: mw.remember("atlas", c)
        )
        assert "empty" in str(error)
        for call in (
            lambda c=content: mw.update(memory_id, content=c),
            lambda c=content: mw.supersede(memory_id, content=c),
            lambda c=content: mw.set_state("atlas", "c", "k", c),
            lambda c=content: mw.erase(memory_id, c),
        ):
            raises_and_changes_nothing(mw, InvalidInputError, call)


def test_content_with_a_nul_character(mw: Memwarden) -> None:
    raises_and_changes_nothing(mw, InvalidInputError, lambda: mw.remember("atlas", "a\x00b"))
    raises_and_changes_nothing(
        mw, InvalidInputError, lambda: mw.ingest_text("atlas", "x.md", "a\x00b")
    )


def test_content_over_the_default_maximum(mw: Memwarden, memory_id: int) -> None:
    limit = 64 * 1024
    assert mw.settings.max_content_bytes == limit
    too_big = "a" * (limit + 1)
    error = raises_and_changes_nothing(mw, InvalidInputError, lambda: mw.remember("atlas", too_big))
    assert str(limit) in str(error) and "MEMWARDEN_MAX_CONTENT_BYTES" in str(error)
    raises_and_changes_nothing(mw, InvalidInputError, lambda: mw.update(memory_id, content=too_big))
    raises_and_changes_nothing(
        mw, InvalidInputError, lambda: mw.set_state("atlas", "c", "k", too_big)
    )
    # the limit counts bytes: 'é' is two of them
    raises_and_changes_nothing(
        mw, InvalidInputError, lambda: mw.remember("atlas", "é" * (limit // 2 + 1))
    )
    assert mw.remember("atlas", "a" * limit).memory.content == "a" * limit  # exactly at the limit


def test_content_maximum_is_configurable(mw: Memwarden) -> None:
    small = mw.settings.model_copy(update={"max_content_bytes": 100})
    with Memwarden(small) as narrow:
        raises_and_changes_nothing(
            narrow, InvalidInputError, lambda: narrow.remember("atlas", "b" * 101)
        )
        assert narrow.remember("atlas", "b" * 100).memory.content == "b" * 100


def test_content_maximum_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEMWARDEN_MAX_CONTENT_BYTES", "2048")
    assert Settings().max_content_bytes == 2048


# -- type, project, confidence -----------------------------------------------------------------


def test_unknown_type(mw: Memwarden, memory_id: int) -> None:
    for type_ in ("foo", "", "  ", "knowledge2", "memory"):
        error = raises_and_changes_nothing(
            mw, InvalidInputError, lambda t=type_: mw.remember("atlas", "Something", t)
        )
        assert "unknown memory type" in str(error) and "knowledge" in str(error)
        raises_and_changes_nothing(
            mw, InvalidInputError, lambda t=type_: mw.update(memory_id, type=t)
        )


def test_unknown_project(mw: Memwarden) -> None:
    error = raises_and_changes_nothing(mw, NotFoundError, lambda: mw.remember("ghost", "Something"))
    assert "ghost" in str(error) and "memwarden project add ghost" in str(error)


def test_confidence_outside_zero_one(mw: Memwarden, memory_id: int) -> None:
    for confidence in (-0.01, 1.01, -1, 2, math.nan, math.inf, -math.inf):
        error = raises_and_changes_nothing(
            mw,
            InvalidInputError,
            lambda c=confidence: mw.remember("atlas", "Something", confidence=c),
        )
        assert "confidence" in str(error)
        raises_and_changes_nothing(
            mw, InvalidInputError, lambda c=confidence: mw.update(memory_id, confidence=c)
        )


def test_confidence_that_is_not_a_number(mw: Memwarden) -> None:
    for confidence in ("0.5", True, None):
        raises_and_changes_nothing(
            mw,
            InvalidInputError,
            lambda c=confidence: mw.remember("atlas", "Something", confidence=c),
        )


def test_confidence_bounds_are_accepted(mw: Memwarden) -> None:
    assert mw.remember("atlas", "Sure", confidence=1).memory.confidence == 1.0
    assert mw.remember("atlas", "Unsure", confidence=0.0).memory.confidence == 0.0


def test_a_negative_zero_confidence_is_zero_and_the_memory_stays_servable(
    mw: Memwarden, memory_id: int
) -> None:
    """SQLite stores -0.0 as 0: a row MAC made over -0.0 never matched the row read back, so
    the memory read as tampered from its first write, and no repair could mend it."""
    created = mw.remember("atlas", "Minus zero", confidence=-0.0, status="active").memory
    assert math.copysign(1.0, created.confidence) == 1.0
    assert mw.get(created.id).confidence == 0.0  # served: its MAC matches
    mw.update(memory_id, confidence=-0.0)
    assert mw.reinforce(memory_id).confidence >= 0.0
    assert mw.integrity_check().run.finding("tampered_memories") is None


def test_a_state_entry_whose_name_the_ledger_cannot_hold_is_refused(mw: Memwarden) -> None:
    """The ledger's entity id of a state entry is the JSON of (project, category, key): 200
    double quotes as a key pass the key's own limit but escape to 400+ characters. PostgreSQL
    refused that ledger row and the entry was written unrecorded (fail-open)."""
    for category, key in (("c", '"' * 200), ("c" * 10, "\\" * 195), ("c" * 101, "k")):
        raises_and_changes_nothing(
            mw, InvalidInputError, lambda c=category, k=key: mw.set_state("atlas", c, k, "v")
        )
    raises_and_changes_nothing(
        mw, InvalidInputError, lambda: mw.set_state("atlas", "c", "k", "v", source="s" * 2001)
    )
    # At the limit it is written, and recorded.
    entry = mw.set_state("atlas", "c" * 100, "k" * 200, "v")
    assert entry.key == "k" * 200
    assert mw.verify().ok and mw.integrity_check().clean


def test_a_new_memory_in_a_final_status(mw: Memwarden) -> None:
    for status in ("rejected", "superseded", "erased", "zombie"):
        raises_and_changes_nothing(
            mw, InvalidInputError, lambda s=status: mw.remember("atlas", "x", status=s)
        )


def test_a_note_too_long(mw: Memwarden, memory_id: int) -> None:
    raises_and_changes_nothing(
        mw, InvalidInputError, lambda: mw.promote(memory_id, note="n" * 2001)
    )


# -- paths and files ---------------------------------------------------------------------------


def test_missing_path(mw: Memwarden, tmp_path: Path) -> None:
    error = raises_and_changes_nothing(
        mw, NotFoundError, lambda: mw.ingest([tmp_path / "missing"], "atlas")
    )
    assert "missing" in str(error)


@pytest.mark.parametrize(
    "data",
    [b"\x00\x01\x02binary", b"\xff\xfe\xfa not utf-8", "Grüße".encode("latin-1")],
    ids=["binary", "invalid-bytes", "latin-1"],
)
def test_binary_or_non_utf8_file_alone_is_skipped(
    mw: Memwarden, tmp_path: Path, data: bytes
) -> None:
    path = tmp_path / "file.md"
    path.write_bytes(data)
    before = db_state(mw)
    report = mw.ingest([path], "atlas")
    assert [o.status for o in report.files] == ["skipped"]
    assert report.files[0].reason
    assert db_state(mw) == before


# -- the database itself -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "content",
    [b"this is a text file, not a database\n" * 10, b"SQLite format 2\x00" + b"\x00" * 200],
    ids=["text", "wrong-header"],
)
def test_a_path_that_is_not_a_sqlite_database(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "notes.db"
    path.write_bytes(content)
    settings = Settings(home=tmp_path / "home", database_url=f"sqlite:///{path}")
    with pytest.raises(StorageError, match="not a SQLite database"):
        Memwarden(settings)
    with pytest.raises(StorageError, match="not a SQLite database"):
        Memwarden.init(settings)
    assert path.read_bytes() == content
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.db"]


def test_a_corrupt_file_with_a_sqlite_header(tmp_path: Path) -> None:
    path = tmp_path / "corrupt.db"
    content = b"SQLite format 3\x00" + b"\xab" * 4096
    path.write_bytes(content)
    settings = Settings(home=tmp_path / "home", database_url=f"sqlite:///{path}")
    with pytest.raises(StorageError):
        Memwarden(settings)
    with pytest.raises(StorageError):
        Memwarden.init(settings)
    assert path.read_bytes() == content


def test_a_directory_as_the_database(tmp_path: Path) -> None:
    folder = tmp_path / "folder.db"
    folder.mkdir()
    with pytest.raises(StorageError, match="directory"):
        Memwarden(Settings(home=tmp_path / "home", database_url=f"sqlite:///{folder}"))


def test_an_unreachable_postgresql() -> None:
    settings = Settings(database_url="postgresql+psycopg://nobody@127.0.0.1:1/none")
    # Issue 15 section 3: one classified line for every way PostgreSQL is down (db/faults.py).
    with pytest.raises(
        StorageError, match="database unreachable: the database server cannot be reached"
    ):
        Memwarden(settings)


def test_an_unsupported_url() -> None:
    with pytest.raises(StorageError, match="unsupported"):
        Memwarden(Settings(database_url="mysql://localhost/x"))


def test_an_uninitialised_database_names_memwarden_init(settings: Settings) -> None:
    with pytest.raises(SchemaMismatchError, match="memwarden init"):
        Memwarden(settings)


def test_an_older_schema_names_memwarden_init(mw: Memwarden) -> None:
    settings = mw.settings
    mw.close()
    store = Store(settings)
    try:
        heads = migrate.head_revisions()
        migrate.downgrade(store, "base")
        migrate.upgrade(store, "0001")
        if heads == {"0001"}:
            pytest.skip("only one revision exists: no older schema to test yet")
        before = db_state(store)
        with pytest.raises(SchemaMismatchError, match="older.*memwarden init"):
            Memwarden(settings)
        assert db_state(store) == before
    finally:
        store.dispose()
    Memwarden.init(settings).close()  # and init brings it up to date
    Memwarden(settings).close()


def test_a_newer_schema_is_refused_and_left_alone(mw: Memwarden) -> None:
    mw.remember("atlas", "Keep me")
    settings = mw.settings
    mw.close()
    store = Store(settings)
    try:
        with store.engine.begin() as conn:
            conn.execute(sa.text("DELETE FROM alembic_version"))
            conn.execute(
                sa.text("INSERT INTO alembic_version (version_num) VALUES ('9999_future')")
            )
        before = db_state(store)
        with pytest.raises(SchemaMismatchError, match="newer") as caught:
            Memwarden(settings)
        assert "9999_future" in str(caught.value)
        with pytest.raises(SchemaMismatchError, match="newer"):
            Memwarden.init(settings)
        assert db_state(store) == before
    finally:
        store.dispose()
