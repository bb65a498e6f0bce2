"""A store opened with another ledger key is refused, never extended: writes and verify stop
with an error naming both key fingerprints and the key file (exit 2 on the CLI, 503 over HTTP,
a tool error over MCP), nothing is written, reads keep working, and the right key restores it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from mcp import Client
from mcp.client.stdio import StdioServerParameters

from api_support import MEMWARDEN, assert_error, client_for, server_env
from cli_support import Cli
from conftest import raw_engine
from memwarden import Memwarden, Settings
from memwarden.audit.chain import ChainKey
from memwarden.db import schema
from memwarden.errors import LedgerKeyMismatchError
from memwarden.observability.faults import faults

OTHER_KEY = "ab" * 32 + "\n"


def _snapshot(settings: Settings) -> dict[str, Any]:
    """Everything a refused write could have touched: the ledger, the memories, the witness."""
    engine = raw_engine(settings)
    try:
        with engine.connect() as conn:
            ledger = conn.execute(sa.select(schema.ledger).order_by(schema.ledger.c.seq)).all()
            memories = conn.execute(sa.select(schema.memories).order_by(schema.memories.c.id)).all()
            state = conn.execute(sa.select(schema.project_state)).all()
    finally:
        engine.dispose()
    return {
        "ledger": [tuple(row) for row in ledger],
        "memories": [tuple(row) for row in memories],
        "state": [tuple(row) for row in state],
        "witness": settings.resolved_witness_file.read_bytes(),
    }


def _swap_key(settings: Settings) -> tuple[str, str]:
    """Put another key in place; returns (the store's fingerprint, the wrong one's)."""
    path = settings.resolved_ledger_key_file
    right = ChainKey.load(path).fingerprint()
    path.with_name("right.key").write_bytes(path.read_bytes())
    path.write_text(OTHER_KEY)
    return right, ChainKey.load(path).fingerprint()


def _restore_key(settings: Settings) -> None:
    path = settings.resolved_ledger_key_file
    path.write_bytes(path.with_name("right.key").read_bytes())


@pytest.fixture
def store(mw: Memwarden) -> Iterator[tuple[Settings, int]]:
    kept = mw.remember("atlas", "The launch window opens in March", status="active").memory
    mw.set_state("atlas", "schedule", "launch", "March 2027")
    settings = mw.settings
    mw.close()
    yield settings, kept.id


def test_wrong_key_refuses_writes_and_verify_and_right_key_restores(
    store: tuple[Settings, int],
) -> None:
    settings, kept = store
    right, wrong = _swap_key(settings)
    before = _snapshot(settings)
    other = Memwarden(settings)
    try:
        for write in (
            lambda: other.remember("atlas", "Written with the wrong key"),
            lambda: other.promote(kept),
            lambda: other.set_state("atlas", "schedule", "launch", "June"),
            lambda: other.add_project("zeus"),
            other.verify,
            other.reset_witness,
            other.integrity_check,  # would call every row forged
            other.ledger_check,  # the dashboard's chain status
            # Reads that check row MACs: with another key every MAC fails, which is this
            # refusal, not a store of tampered rows.
            lambda: other.get(kept),
            lambda: other.get_state("atlas", "schedule", "launch"),
            lambda: other.recall("launch window", "atlas"),
        ):
            with pytest.raises(LedgerKeyMismatchError) as refused:
                write()
            message = str(refused.value)
            assert right in message and wrong in message
            assert str(settings.resolved_ledger_key_file) in message
            assert "MEMWARDEN_LEDGER_KEY_FILE" in message
        # Reads that do not depend on the key keep working.
        assert [p.name for p in other.list_projects()] == ["atlas"]
        assert other.history(kept)[-1].after["content"] == "The launch window opens in March"
        # One fault for the episode, in /health and doctor.
        assert [f.key for f in faults.active()] == ["ledger_key_mismatch"]
    finally:
        other.close()
    assert _snapshot(settings) == before  # nothing written
    _restore_key(settings)
    with Memwarden(settings) as healed:
        assert healed.ledger.refusal is None
        assert healed.open_check is not None and healed.open_check.ok
        healed.remember("atlas", "Written with the right key again")
        report = healed.verify()
        assert report.ok and report.key_fingerprint == right


def test_wrong_key_without_a_witness_is_caught_by_the_chain(
    store: tuple[Settings, int],
) -> None:
    settings, _ = store
    settings.resolved_witness_file.unlink()
    _right, wrong = _swap_key(settings)
    other = Memwarden(settings, require_witness=False, quick_check=False)
    try:
        with pytest.raises(LedgerKeyMismatchError, match=f"holds key {wrong}.*unknown"):
            other.reset_witness()  # would bless the wrong key for good
    finally:
        other.close()
    assert not settings.resolved_witness_file.exists()


def test_wrong_key_over_http_is_a_503_problem(store: tuple[Settings, int]) -> None:
    settings, kept = store
    right, wrong = _swap_key(settings)
    before = _snapshot(settings)
    with Memwarden(settings) as other, client_for(other) as client:
        response = client.post(
            "/memory", json={"project": "atlas", "content": "Posted with the wrong key"}
        )
        error = assert_error(response, 503, "ledger_key_mismatch")
        assert right in error["message"] and wrong in error["message"]
        # A MAC-checked read is refused the same way (not reported as a tampered row).
        assert_error(client.get(f"/memory/{kept}"), 503, "ledger_key_mismatch")
        assert client.get("/projects").status_code == 200
        health = client.get("/health").json()
        assert health["status"] == "degraded"
        assert "ledger_key_mismatch" in [f["key"] for f in health["faults"]]
    assert _snapshot(settings) == before


def test_wrong_key_on_the_cli_exits_2_naming_both_keys(tmp_path: Path) -> None:
    cli = Cli(tmp_path / "home")
    cli.run("init")
    cli.run("project", "add", "atlas")
    cli.run("memory", "add", "-p", "atlas", "-t", "knowledge", "a fact")
    ok = cli.run("audit", "verify")
    settings = Settings(home=tmp_path / "home")
    right, wrong = _swap_key(settings)
    assert f"key: {right}" in ok.stdout
    before = _snapshot(settings)
    for command in (
        ("memory", "add", "-p", "atlas", "-t", "knowledge", "another fact"),
        ("audit", "verify"),
        ("memory", "list", "--json"),  # MAC-checked: refused like a write
    ):
        result = cli.run(*command, code=2)
        lines = result.stderr.strip().splitlines()
        assert lines[-1].startswith("error: wrong ledger key"), result.stderr
        assert right in lines[-1] and wrong in lines[-1]
        assert str(settings.resolved_ledger_key_file) in lines[-1]
    assert _snapshot(settings) == before
    assert json.loads(cli.run("project", "list", "--json").stdout)  # reads without MACs work
    _restore_key(settings)
    cli.run("memory", "add", "-p", "atlas", "-t", "knowledge", "another fact")
    cli.run("audit", "verify")


def test_wrong_key_over_mcp_is_a_tool_error(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home")
    with Memwarden.init(settings) as mw:
        mw.add_project("atlas")
    right, wrong = _swap_key(settings)
    before = _snapshot(settings)

    async def attempt() -> tuple[bool, str]:
        params = StdioServerParameters(command=MEMWARDEN, args=["mcp"], env=server_env(settings))
        async with Client(params, read_timeout_seconds=60) as client:
            result = await client.call_tool(
                "remember", {"content": "Told over MCP", "project": "atlas"}
            )
            return bool(result.is_error), result.content[0].text  # type: ignore[union-attr]

    is_error, text = asyncio.run(asyncio.wait_for(attempt(), timeout=90))
    assert is_error and "wrong ledger key" in text
    assert right in text and wrong in text
    assert _snapshot(settings) == before
