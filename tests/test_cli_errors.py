"""Bad input on the CLI: one clear line on stderr, the right exit code, nothing written."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from cli_support import Cli
from conftest import raw_sqlite_connect
from core_support import db_state
from memwarden import Settings
from memwarden.db.store import Store


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    runner = Cli(tmp_path / "home")
    runner.run("init")
    runner.run("project", "add", "atlas")
    runner.run("memory", "add", "-p", "atlas", "-t", "knowledge", "--status", "active", "a fact")
    return runner


@contextmanager
def unchanged(cli: Cli) -> Iterator[None]:
    store = Store(Settings(home=cli.home))
    try:
        before = db_state(store)
        yield
        assert db_state(store) == before, "a refused command changed the database"
    finally:
        store.dispose()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--type", "knowledge", "   "], "content is empty"),
        (["--type", "knowledge", ""], "content is empty"),
        (["--type", "gossip", "text"], "unknown memory type 'gossip'"),
        (["--type", "knowledge", "--confidence", "1.5", "text"], "between 0 and 1"),
        (["--type", "knowledge", "--confidence", "-0.1", "text"], "between 0 and 1"),
        (["--type", "knowledge", "--confidence", "nan", "text"], "confidence"),
        (["--type", "knowledge", "--status", "invalid", "text"], "candidate or active"),
        (["--type", "knowledge", "--source-chunk", "999", "text"], "source chunk 999 not found"),
    ],
)
def test_memory_add_bad_input(cli: Cli, args: list[str], message: str) -> None:
    with unchanged(cli):
        line = cli.error("memory", "add", "--project", "atlas", *args)
    assert message in line


def test_content_over_the_configured_maximum(cli: Cli) -> None:
    with unchanged(cli):
        line = cli.run(
            "memory",
            "add",
            "-p",
            "atlas",
            "-t",
            "knowledge",
            "x" * 101,
            code=1,
            env={"MEMWARDEN_MAX_CONTENT_BYTES": "100"},
        ).stderr
    assert "over the maximum of 100" in line and "MEMWARDEN_MAX_CONTENT_BYTES" in line


def test_unknown_project_names_the_command_that_creates_it(cli: Cli) -> None:
    with unchanged(cli):
        for args in (
            ["memory", "add", "-p", "apollo", "-t", "knowledge", "text"],
            ["state", "set", "apollo", "a", "b", "c"],
            ["recall", "fact", "--project", "apollo"],
            ["context", "fact", "--project", "apollo"],
        ):
            assert "`memwarden project add apollo`" in cli.error(*args)


def test_domain_errors_exit_1(cli: Cli) -> None:
    with unchanged(cli):
        assert "memory 999 not found" in cli.error("memory", "show", "999")
        assert "cannot reject memory 1: it is active" in cli.error("memory", "reject", "1")
        assert "cannot promote memory 1: it is active" in cli.error("memory", "promote", "1")
        assert "already exists" in cli.error("project", "add", "atlas")
        assert "still holds" in cli.error("project", "remove", "atlas")
        assert "invalid project name" in cli.error("project", "add", "no spaces")
        assert "no state" in cli.error("state", "get", "atlas", "a", "b")
        assert "nothing to update" in cli.error("memory", "update", "1")
        assert "query is empty" in cli.error("recall", "  ")
        assert "budget" in cli.error("context", "fact", "-p", "atlas", "--budget", "5")
        assert "limit" in cli.error("memory", "list", "--limit", "0")
        assert "unknown status" in cli.error("memory", "list", "--status", "sleeping")
        assert "cannot supersede itself" in cli.error("memory", "supersede", "1", "--by", "1")
        assert "unknown memory type 'gossip'" in cli.error("recall", "fact", "--type", "gossip")


def test_usage_errors_exit_2(cli: Cli) -> None:
    with unchanged(cli):
        cli.error("memory", "add", "-p", "atlas", "-t", "knowledge", "-c", "high", "x", code=2)
        cli.error("memory", "add", "-p", "atlas", "text", code=2)  # --type is required
        cli.error("memory", "supersede", "1", code=2)
        assert "exactly one" in cli.error(
            "memory", "supersede", "1", "--by", "2", "--content", "x", code=2
        )
        cli.error("memory", "show", "one", code=2)
        cli.error("memory", "frobnicate", "1", code=2)
        cli.error("audit", "reset-witness", code=2)
        cli.error("audit", "recent", "--limit", "0", code=2)


def test_ingest_skips_binary_and_non_utf8_files_and_ingests_the_rest(
    cli: Cli, tmp_path: Path
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "good.md").write_text("# Good\n\nA readable document about engines.\n")
    (docs / "binary.md").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00binary")
    (docs / "latin1.txt").write_bytes("caf\xe9 cr\xe8me".encode("latin-1"))
    image = tmp_path / "photo.png"
    image.write_bytes(b"\x89PNG\x00\x00")
    result = cli.run("ingest", str(docs), str(image), "--project", "atlas", "--json")
    report = json.loads(result.stdout)  # warnings never pollute the JSON on stdout
    assert (report["created"], report["skipped"]) == (1, 3)
    warnings = result.stderr.strip().splitlines()
    assert len(warnings) == 3 and all(w.startswith("warning: skipped ") for w in warnings)
    assert any("binary.md" in w and "binary" in w for w in warnings)
    assert any("latin1.txt" in w and "UTF-8" in w for w in warnings)
    assert "readable" in cli.run("recall", "readable engines", "-p", "atlas").stdout


def test_ingest_missing_path(cli: Cli, tmp_path: Path) -> None:
    with unchanged(cli):
        line = cli.error("ingest", str(tmp_path / "nowhere.md"), "-p", "atlas")
    assert "no such file or folder" in line and "nowhere.md" in line


def test_malformed_time_and_anchor(cli: Cli) -> None:
    with unchanged(cli):
        assert "malformed time 'last tuesday'" in cli.error(
            "audit", "as-of", "1", "--at", "last tuesday"
        )
        assert "malformed" in cli.error("audit", "recent", "--since", "2025-13-45")
        assert "malformed anchor" in cli.error("audit", "verify", "--anchor", "12:zz")
        assert "malformed anchor" in cli.error("audit", "verify", "--anchor", "nonsense")
        assert "did not exist yet" in cli.error("audit", "as-of", "1", "--at", "2001-01-01")
        assert "not part of" in cli.error("audit", "diff", "1", "--from", "1", "--to", "2")


def test_revert_refusals(cli: Cli) -> None:
    cli.run("memory", "add", "-p", "atlas", "-t", "knowledge", "another fact")
    with unchanged(cli):
        assert "belongs to project atlas" in cli.error("memory", "revert", "2", "--to", "1")
        assert "does not exist" in cli.error("memory", "revert", "2", "--to", "999")


def test_not_a_sqlite_database(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "memwarden.db").write_text("these are my notes, not a database\n")
    line = Cli(home).error("project", "list")
    assert "is not a SQLite database" in line
    assert "these are my notes" in (home / "memwarden.db").read_text()
    assert "is not a SQLite database" in Cli(home).error("init")


def test_uninitialised_database_names_init(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    raw_sqlite_connect(home / "memwarden.db").close()
    assert "run `memwarden init`" in Cli(home).error("memory", "list")


def test_schema_newer_than_the_code_is_refused(cli: Cli) -> None:
    conn = raw_sqlite_connect(cli.home / "memwarden.db")
    with conn:
        conn.execute("INSERT INTO alembic_version VALUES ('9999_from_the_future')")
    conn.close()
    line = cli.error("memory", "list")
    assert "newer than this memwarden" in line
    assert "newer" in cli.error("init")


def test_missing_ledger_key(cli: Cli) -> None:
    (cli.home / "ledger.key").unlink()
    line = cli.error("memory", "list")
    assert "ledger key" in line and "missing" in line


def test_invalid_setting(tmp_path: Path) -> None:
    cli = Cli(tmp_path / "home", MEMWARDEN_SQLITE_SYNCHRONOUS="sometimes")
    assert "MEMWARDEN_SQLITE_SYNCHRONOUS" in cli.error("init")


def test_unsupported_database_url(tmp_path: Path) -> None:
    cli = Cli(tmp_path / "home", database_url="mysql://db/x")
    assert "unsupported database URL" in cli.error("init")
    assert "invalid database URL" in Cli(tmp_path / "h2", database_url="::nonsense::").error("init")


def test_debug_shows_the_traceback(cli: Cli) -> None:
    quiet = cli.run("memory", "show", "999", code=1)
    assert "Traceback" not in quiet.stderr
    loud = cli.run("memory", "show", "999", code=1, env={"MEMWARDEN_DEBUG": "1"})
    assert "Traceback" in loud.stderr and "NotFoundError" in loud.stderr
    assert loud.stderr.strip().splitlines()[-1] == "error: memory 999 not found"


def test_arguments_not_utf8_or_nested_too_deep_are_one_line_refusals(cli: Cli) -> None:
    """An argument with bytes that are not UTF-8 (Python keeps them as lone surrogates) and a
    metadata object nested past the JSON parser's stack were "unexpected UnicodeEncodeError"
    and "unexpected RecursionError" (found by an attack session)."""
    with unchanged(cli):
        line = cli.error("audit", "recent", "--actor", "a\udcff")
    assert line == "error: an argument is not valid UTF-8 text: check its encoding"
    deep = '{"a":' * 5000 + "1" + "}" * 5000
    with unchanged(cli):
        line = cli.error("memory", "add", "-p", "atlas", "-t", "knowledge", "--metadata", deep, "x")
    assert "unexpected" not in line and ("nested" in line or "deep" in line), line
