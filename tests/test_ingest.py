"""Ingest: files and folders, chunking, idempotence, replacement in one transaction."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import sqlalchemy as sa

from cli_support import Cli
from core_support import db_state, index_matches, raises_and_changes_nothing
from memwarden import Memwarden, Settings
from memwarden.core.chunking import chunk_text
from memwarden.db import schema
from memwarden.errors import NotFoundError

D, C = schema.documents, schema.source_chunks

PLAN = """# Launch plan

The launch window opens in March. The vehicle is the Atlas heavy lifter.

The crew boards four hours before ignition.

## Weather

Winds above forty knots scrub the launch.
"""


def documents(mw: Memwarden) -> dict[str, sa.Row[tuple[object, ...]]]:
    with mw.store.read() as conn:
        return {row.uri: row for row in conn.execute(sa.select(D))}


def chunks(mw: Memwarden, document_id: int | None = None) -> list[sa.Row[tuple[object, ...]]]:
    query = sa.select(C).order_by(C.c.document_id, C.c.ordinal)
    if document_id is not None:
        query = query.where(C.c.document_id == document_id)
    with mw.store.read() as conn:
        return list(conn.execute(query))


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


# -- chunking (pure) ---------------------------------------------------------------------------


def test_chunks_follow_headings_and_paragraphs() -> None:
    result = chunk_text(PLAN, target=1200)
    assert [(c.heading, c.content) for c in result] == [
        (
            "Launch plan",
            "The launch window opens in March. The vehicle is the Atlas heavy lifter.\n\n"
            "The crew boards four hours before ignition.",
        ),
        ("Weather", "Winds above forty knots scrub the launch."),
    ]


def test_chunks_pack_paragraphs_up_to_the_target() -> None:
    paragraphs = [f"Paragraph {i} " + "word " * 40 for i in range(12)]  # ~215 chars each
    text = "# Notes\n\n" + "\n\n".join(p.strip() for p in paragraphs)
    result = chunk_text(text, target=500)
    assert len(result) > 3
    assert all(c.heading == "Notes" for c in result)
    limit = max(200, int(500 * 1.5))
    assert all(len(c.content) <= limit for c in result)
    # nothing lost, nothing repeated, order kept
    joined = "\n\n".join(c.content for c in result)
    assert joined == "\n\n".join(p.strip() for p in paragraphs)


def test_a_long_paragraph_is_cut_at_sentences() -> None:
    sentence = "The booster separates cleanly over the ocean."
    text = " ".join([sentence] * 60)
    result = chunk_text(text, target=300)
    assert len(result) > 1
    assert all(len(c.content) <= 450 for c in result)
    assert all(c.content.endswith(".") for c in result)
    assert " ".join(c.content for c in result) == text


def test_headings_inside_code_fences_are_not_headings() -> None:
    text = "# Real\n\n```\n# not a heading\n```\n\n## Second\n\nBody."
    result = chunk_text(text)
    assert [c.heading for c in result] == ["Real", "Second"]
    assert "# not a heading" in result[0].content


def test_text_before_the_first_heading_has_no_heading() -> None:
    assert [c.heading for c in chunk_text("Preamble.\n\n# H\n\nBody.")] == ["", "H"]
    assert chunk_text("") == [] and chunk_text("\n\n   \n") == []


# -- ingest on both engines --------------------------------------------------------------------


def test_ingest_a_folder_recursively(mw: Memwarden, tmp_path: Path) -> None:
    root = tmp_path / "docs"
    a = write(root / "plan.md", PLAN)
    b = write(root / "sub" / "crew.txt", "Crew of four.\n\nCommander Ada.")
    c = write(root / "sub" / "deeper" / "notes.markdown", "# Notes\n\nTelemetry on S band.")
    write(root / ".hidden" / "secret.md", "hidden")
    write(root / "script.py", "print('not a document')")
    seen: list[Path] = []
    report = mw.ingest([root], "atlas", progress=seen.append)
    assert report.count("created") == 3
    # What the folder holds and is not read is named, with why.
    assert {Path(o.uri).name: o.reason for o in report.skipped} == {
        ".hidden": "hidden folder, not read",
        "script.py": "a .py file, not text or Markdown "
        "(read: .markdown, .md, .mdx, .rst, .text, .txt)",
    }
    assert sorted(seen) == sorted([a, b, c])
    docs = documents(mw)
    assert set(docs) == {str(p.resolve()) for p in (a, b, c)}
    plan = docs[str(a.resolve())]
    assert (plan.title, plan.project, plan.size_bytes) == ("plan", "atlas", len(PLAN.encode()))
    stored = chunks(mw, plan.id)
    assert [(r.ordinal, r.heading) for r in stored] == [(0, "Launch plan"), (1, "Weather")]
    assert all(r.project == "atlas" for r in stored)
    assert report.to_dict()["chunks"] == len(chunks(mw))
    created = [r for r in mw.recent(entity_type="document") if r.action == "created"]
    assert len(created) == 3
    assert all(r.after is not None and r.after["chunk_count"] >= 1 for r in created)
    # the chunks are searchable at once
    assert index_matches(mw, "telemetry", "source_chunks")


def test_ingest_files_and_folders_together(mw: Memwarden, tmp_path: Path) -> None:
    single = write(tmp_path / "single.md", "One file.")
    folder = tmp_path / "folder"
    write(folder / "x.md", "Folder file.")
    report = mw.ingest([single, folder], "atlas")
    assert report.count("created") == 2


def test_chunk_target_is_configurable(settings_small_chunks: Memwarden, tmp_path: Path) -> None:
    mw = settings_small_chunks
    body = "\n\n".join(f"Paragraph {i}: " + "thrust " * 30 for i in range(10))
    path = write(tmp_path / "long.md", "# Engines\n\n" + body)
    mw.ingest([path], "atlas")
    stored = chunks(mw)
    assert len(stored) >= 5
    assert all(len(r.content) <= 300 and r.heading == "Engines" for r in stored)
    assert [r.ordinal for r in stored] == list(range(len(stored)))


@pytest.fixture
def settings_small_chunks(settings: object) -> object:
    from memwarden import Settings

    assert isinstance(settings, Settings)
    small = settings.model_copy(update={"chunk_target_chars": 200})
    instance = Memwarden.init(small)
    instance.add_project("atlas")
    yield instance
    instance.close()


def test_reingesting_unchanged_content_changes_nothing(mw: Memwarden, tmp_path: Path) -> None:
    root = tmp_path / "docs"
    write(root / "plan.md", PLAN)
    write(root / "crew.md", "Crew of four.")
    mw.ingest([root], "atlas")
    before = db_state(mw)
    report = mw.ingest([root], "atlas")
    assert report.count("unchanged") == 2 and report.count("created") == 0
    assert all(outcome.document_id is not None for outcome in report.files)
    assert db_state(mw) == before


def test_a_changed_file_replaces_its_chunks(mw: Memwarden, tmp_path: Path) -> None:
    path = write(tmp_path / "plan.md", PLAN)
    other = write(tmp_path / "other.md", "# Other\n\nUnrelated ground notes.")
    mw.ingest([path, other], "atlas")
    doc = documents(mw)[str(path.resolve())]
    old_chunks = chunks(mw, doc.id)
    other_chunks = chunks(mw, documents(mw)[str(other.resolve())].id)
    citing = mw.remember("atlas", "Launch opens in March", source_chunk_id=old_chunks[0].id).memory
    mw.promote(citing.id)
    uncited = mw.remember("atlas", "Something unrelated").memory
    head = mw.anchor().seq

    write(path, PLAN.replace("March", "April") + "\n## Range\n\nThe range opens at dawn.\n")
    report = mw.ingest([path], "atlas")
    assert [o.status for o in report.files] == ["updated"]
    new_chunks = chunks(mw, doc.id)
    assert {r.id for r in new_chunks}.isdisjoint({r.id for r in old_chunks})
    assert [r.heading for r in new_chunks] == ["Launch plan", "Weather", "Range"]
    assert "April" in new_chunks[0].content
    assert chunks(mw, documents(mw)[str(other.resolve())].id) == other_chunks
    assert documents(mw)[str(path.resolve())].content_hash != doc.content_hash
    # the citing memory lost its citation through an audited update; others untouched
    after = mw.get(citing.id)
    assert after.source_chunk_id is None and after.status == "active"
    assert mw.get(uncited.id) == uncited
    entry = mw.history(citing.id)[-1]
    assert entry.action == "updated"
    assert entry.before is not None and entry.before["source_chunk_id"] == old_chunks[0].id
    assert entry.after is not None and entry.after["source_chunk_id"] is None
    assert entry.note == "source chunk replaced by a re-ingest"
    # both entries came from one transaction: appended together, in one go
    new_entries = [r for r in mw.recent(limit=10) if r.seq > head]
    assert sorted((r.entity_type, r.action) for r in new_entries) == [
        ("document", "updated"),
        ("memory", "updated"),
    ]
    assert len({r.ts for r in new_entries}) == 1
    document_entry = next(r for r in new_entries if r.entity_type == "document")
    assert document_entry.before is not None and document_entry.before["chunk_count"] == 2
    assert document_entry.after is not None and document_entry.after["chunk_count"] == 3
    # the index follows: old words gone, new words found
    assert not index_matches(mw, "march", "source_chunks")
    assert index_matches(mw, "april", "source_chunks")
    assert mw.verify().ok


def test_a_failed_replacement_leaves_everything_as_it_was(
    mw: Memwarden, tmp_path: Path, engine_name: str
) -> None:
    """A failure half-way through a re-ingest (here: a trigger refusing one new chunk, after
    the old chunks were dropped and the citing memory updated) rolls the whole file back."""
    path = write(tmp_path / "plan.md", PLAN)
    mw.ingest([path], "atlas")
    first = chunks(mw)[0]
    mw.remember("atlas", "Launch opens in March", source_chunk_id=first.id)
    with mw.store.engine.begin() as conn:
        if engine_name == "sqlite":
            conn.exec_driver_sql(
                "CREATE TRIGGER test_boom BEFORE INSERT ON source_chunks "
                "WHEN new.content LIKE '%BOOM%' BEGIN SELECT RAISE(ABORT, 'boom'); END"
            )
        else:
            conn.exec_driver_sql(
                "CREATE FUNCTION test_boom() RETURNS trigger AS $$ BEGIN "
                "IF NEW.content LIKE '%%BOOM%%' THEN RAISE EXCEPTION 'boom'; END IF; "
                "RETURN NEW; END; $$ LANGUAGE plpgsql"
            )
            conn.exec_driver_sql(
                "CREATE TRIGGER test_boom BEFORE INSERT ON source_chunks "
                "FOR EACH ROW EXECUTE FUNCTION test_boom()"
            )
    before = db_state(mw)
    write(path, PLAN + "\n## Failure\n\nBOOM goes this chunk.\n")
    with pytest.raises(sa.exc.DBAPIError, match="boom"):
        mw.ingest([path], "atlas")
    assert db_state(mw) == before


def test_binary_and_non_utf8_files_are_skipped_and_the_rest_ingested(
    mw: Memwarden, tmp_path: Path
) -> None:
    root = tmp_path / "docs"
    good = write(root / "good.md", "# Good\n\nReadable text.")
    write(root / "binary.md", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    write(root / "latin1.txt", "Caf\xe9 au lait".encode("latin-1"))
    report = mw.ingest([root], "atlas")
    assert report.count("created") == 1
    skipped = {Path(o.uri).name: o.reason or "" for o in report.skipped}
    assert set(skipped) == {"binary.md", "latin1.txt"}
    assert "binary" in skipped["binary.md"]
    assert "UTF-8" in skipped["latin1.txt"]
    assert set(documents(mw)) == {str(good.resolve())}


@pytest.mark.timeout(60)  # the FIFO blocked for ever before
def test_special_and_oversized_files_named_directly_are_skipped_unread(
    mw: Memwarden, tmp_path: Path
) -> None:
    """Named on the command line (not found by a folder's scan, which skipped them): a FIFO
    blocked for ever, /dev/zero was read until memory ran out, and an oversized file was read
    whole before its size was checked (found by an attack session)."""
    fifo = tmp_path / "pipe.md"
    os.mkfifo(fifo)
    sparse = tmp_path / "huge.md"
    with sparse.open("wb") as handle:
        handle.truncate(400 * 1024 * 1024)  # sparse: no disk used, 400 MB to read
    good = write(tmp_path / "good.md", "# Good\n\nReadable text.")
    report = mw.ingest([fifo, Path("/dev/zero"), sparse, good], "atlas")
    assert report.count("created") == 1
    skipped = {Path(o.uri).name: o.reason or "" for o in report.skipped}
    assert "regular file" in skipped["pipe.md"] and "regular file" in skipped["zero"]
    assert "larger than" in skipped["huge.md"]


def test_a_utf8_bom_and_non_ascii_text_are_fine(mw: Memwarden, tmp_path: Path) -> None:
    path = write(tmp_path / "bom.md", "\ufeff# Café\n\nLa fusée décolle à l'aube.".encode())
    report = mw.ingest([path], "atlas")
    assert report.count("created") == 1
    stored = chunks(mw)
    assert stored[0].heading == "Café"
    assert mw.recall("fusée", "atlas")


def test_missing_path_is_an_error_and_changes_nothing(mw: Memwarden, tmp_path: Path) -> None:
    good = write(tmp_path / "good.md", "Readable text.")
    missing = tmp_path / "nope.md"
    error = raises_and_changes_nothing(
        mw, NotFoundError, lambda: mw.ingest([good, missing], "atlas")
    )
    assert str(missing) in str(error)


def test_ingest_into_an_unknown_project(mw: Memwarden, tmp_path: Path) -> None:
    good = write(tmp_path / "good.md", "Readable text.")
    error = raises_and_changes_nothing(mw, NotFoundError, lambda: mw.ingest([good], "ghost"))
    assert "memwarden project add ghost" in str(error)


def test_same_uri_in_two_projects_is_two_documents(mw: Memwarden) -> None:
    mw.add_project("borealis")
    a = mw.ingest_text("atlas", "shared.md", "Shared words.")
    b = mw.ingest_text("borealis", "shared.md", "Shared words.")
    assert (a.status, b.status) == ("created", "created")
    assert a.document_id != b.document_id


def test_the_cli_names_each_skipped_file_counts_them_and_strict_refuses(
    settings: Settings, tmp_path: Path
) -> None:
    cli = Cli(settings.home, settings.database_url)
    cli.run("init")
    cli.run("project", "add", "atlas")
    root = tmp_path / "docs"
    write(root / "plan.md", PLAN)
    (root / "diagram.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    (root / "latin1.txt").write_bytes("caf\xe9".encode("latin-1"))

    strict = cli.run("ingest", str(root), "-p", "atlas", "--strict", code=1)
    assert strict.stderr.startswith("error: --strict: 2 file(s) would be skipped, nothing ingested")
    assert "diagram.png: a .png file, not text or Markdown" in strict.stderr
    assert "latin1.txt: not UTF-8 text (byte 3)" in strict.stderr
    assert cli.json("audit", "recent")[0]["entity_type"] == "project"  # nothing ingested

    done = cli.run("ingest", str(root), "-p", "atlas")
    warnings = done.stderr.strip().splitlines()
    assert len(warnings) == 2
    assert warnings[0].startswith("warning: skipped ") and "diagram.png: a .png file" in warnings[0]
    assert "latin1.txt: not UTF-8 text (byte 3)" in warnings[1]
    assert done.stdout.strip() == (
        "ingested into atlas: 1 new, 0 updated, 0 unchanged, 2 skipped (2 chunks written)"
    )
    report = cli.json("ingest", str(root), "-p", "atlas")
    assert (report["unchanged"], report["skipped"]) == (1, 2)
    assert {Path(f["uri"]).name for f in report["files"] if f["status"] == "skipped"} == {
        "diagram.png",
        "latin1.txt",
    }


def test_a_folder_s_symbolic_links_are_followed_only_inside_it(
    mw: Memwarden, tmp_path: Path
) -> None:
    """A folder from elsewhere (a clone, an archive) held ``notes.md`` linked to a private file
    outside it: its text was ingested as a document and served as memory (found by an attack
    session). A link to a file outside the folder, and a link to a folder, are named as
    skipped; a link to a file inside the folder is read."""
    private = write(tmp_path / "private" / "id_secret.txt", "the vault code is 4471")
    root = tmp_path / "docs"
    good = write(root / "plan.md", PLAN)
    (root / "notes.md").symlink_to(private)
    (root / "shared").symlink_to(private.parent, target_is_directory=True)
    (root / "again.md").symlink_to(good)
    report = mw.ingest([root], "atlas")
    skipped = {Path(o.uri).name: o.reason or "" for o in report.skipped}
    assert set(skipped) == {"notes.md", "shared"}
    assert "outside the folder, not followed" in skipped["notes.md"]
    assert "link to a folder, not followed" in skipped["shared"]
    assert str(root / "notes.md") in {o.uri for o in report.skipped}  # the link, not its target
    assert set(documents(mw)) == {str(good.resolve())}
    assert not index_matches(mw, "vault", "source_chunks")
    # Named on its own, the link is read: the reader asked for it.
    named = mw.ingest([root / "notes.md"], "atlas")
    assert named.count("created") == 1


def test_a_loop_of_links_in_a_folder_is_skipped_not_fatal(mw: Memwarden, tmp_path: Path) -> None:
    root = tmp_path / "docs"
    good = write(root / "plan.md", PLAN)
    (root / "a.md").symlink_to(root / "b.md")
    (root / "b.md").symlink_to(root / "a.md")
    report = mw.ingest([root], "atlas")
    assert {Path(o.uri).name for o in report.skipped} == {"a.md", "b.md"}
    assert set(documents(mw)) == {str(good.resolve())}
