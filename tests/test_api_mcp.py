"""The MCP server, driven by the SDK's own client over stdio against a real
``memwarden mcp`` subprocess: every tool, refusals as tool errors, and the actor
``mcp:<client name>`` from the client's initialisation."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp_types import Implementation
from pydantic import SecretStr

from api_support import MEMWARDEN, server_env
from cli_support import Cli
from memwarden import Memwarden, Settings
from memwarden.core.provenance import Scopes

TOOLS = {
    "remember",
    "recall",
    "build_context",
    "list_candidates",
    "promote",
    "reject",
    "memory_history",
    "capture_interaction",
}


@pytest.fixture
def home_settings(tmp_path: Path) -> Settings:
    """A database with a person's candidate waiting, and the key the MCP server acts with:
    a write key granted promote and reject (nobody promotes their own writing, so the
    candidate it promotes is the person's)."""
    settings = Settings(home=tmp_path / "home")
    with Memwarden.init(settings) as mw:
        mw.add_project("atlas")
        mw.set_state("atlas", "schedule", "launch", "March 2027")
        mw.remember("atlas", "The launch window opens in March", "project")
        scopes = replace(Scopes.for_role("write"), promote=True, reject=True)
        _, token = mw.create_key("desk", "write", scopes)
    return settings.model_copy(update={"mcp_key": SecretStr(token)})


def params(settings: Settings) -> StdioServerParameters:
    env = server_env(settings)
    if settings.mcp_key is not None:
        env["MEMWARDEN_MCP_KEY"] = settings.mcp_key.get_secret_value()
    return StdioServerParameters(command=MEMWARDEN, args=["mcp"], env=env)


async def call(client: Client, tool: str, **arguments: Any) -> dict[str, Any]:
    result = await client.call_tool(tool, arguments)
    assert not result.is_error, result.content
    assert isinstance(result.structured_content, dict)
    return result.structured_content


async def session(settings: Settings) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    client_info = Implementation(name="claude-desktop", version="1.0")
    async with Client(params(settings), client_info=client_info, read_timeout_seconds=60) as client:
        seen["tools"] = {tool.name for tool in (await client.list_tools()).tools}
        kept = {"memory": {"id": 1}}  # the person's candidate
        rejected = await call(client, "remember", content="Launch is in June", project="atlas")
        seen["ids"] = (kept["memory"]["id"], rejected["memory"]["id"])
        own = await client.call_tool("promote", {"memory_id": rejected["memory"]["id"]})
        seen["own"] = (own.is_error, own.content[0].text)  # type: ignore[union-attr]
        queue = await call(client, "list_candidates", project="atlas")
        seen["queue"] = [m["id"] for m in queue["candidates"]]
        seen["promoted"] = await call(
            client, "promote", memory_id=kept["memory"]["id"], note="confirmed"
        )
        seen["rejected"] = await call(client, "reject", memory_id=rejected["memory"]["id"])
        seen["recall"] = await call(client, "recall", query="launch window", project="atlas")
        seen["context"] = await call(client, "build_context", query="launch", project="atlas")
        seen["history"] = await call(client, "memory_history", memory_id=kept["memory"]["id"])
        again = await client.call_tool("promote", {"memory_id": kept["memory"]["id"]})
        seen["illegal"] = (again.is_error, again.content[0].text)  # type: ignore[union-attr]
        missing = await client.call_tool("memory_history", {"memory_id": 999_999})
        seen["missing"] = (missing.is_error, missing.content[0].text)  # type: ignore[union-attr]
        seen["captured"] = await call(
            client,
            "capture_interaction",
            project="atlas",
            prompt="I prefer metric units.",
            response="Noted.",
        )
        bad = await client.call_tool("recall", {"query": "x", "k": 1000})
        seen["bad_args"] = bad.is_error
    return seen


def test_tools_over_stdio(home_settings: Settings) -> None:
    seen = asyncio.run(asyncio.wait_for(session(home_settings), timeout=90))
    assert seen["tools"] >= TOOLS
    kept, rejected = seen["ids"]
    assert seen["queue"] == [rejected, kept]
    assert seen["promoted"]["status"] == "active" and seen["rejected"]["status"] == "rejected"
    assert [h["id"] for h in seen["recall"]["hits"] if h["kind"] == "memory"] == [kept]
    assert (
        seen["context"]["items"][0]["kind"] == "state" and "March 2027" in seen["context"]["text"]
    )
    trail = seen["history"]["entries"]
    assert [(e["action"], e["actor"]) for e in trail] == [
        ("created", "library"),
        ("promoted", "mcp:claude-desktop"),
    ]
    assert seen["own"][0] and "own writing" in seen["own"][1]
    assert trail[1]["note"] == "confirmed"
    assert seen["illegal"][0] and "illegal_transition" in seen["illegal"][1]
    assert seen["missing"][0] and "not_found" in seen["missing"][1]
    assert seen["bad_args"] is True
    assert seen["captured"]["client"] == "claude-desktop"
    with Memwarden(home_settings) as mw:
        assert mw.history(rejected)[-1].actor == "mcp:claude-desktop"
        captured = mw.recent(action="captured")
        assert [(r.entity_id, r.actor) for r in captured] == [
            (str(seen["captured"]["id"]), "mcp:claude-desktop")
        ]
        assert mw.verify().ok


def test_refuses_to_start_on_an_uninitialised_database(tmp_path: Path) -> None:
    result = Cli(tmp_path / "none").run("mcp", code=1)
    assert "memwarden init" in result.stderr
    assert result.stdout == ""  # stdout is the protocol channel: nothing else on it


async def legacy_session(settings: Settings) -> list[tuple[str, str]]:
    info = Implementation(name="old-agent", version="0.1")
    async with Client(
        params(settings), client_info=info, mode="legacy", read_timeout_seconds=60
    ) as client:
        made = await call(
            client, "remember", content="Legacy clients initialise first", project="atlas"
        )
        trail = await call(client, "memory_history", memory_id=made["memory"]["id"])
    return [(e["action"], e["actor"]) for e in trail["entries"]]


def test_actor_from_the_initialize_handshake(home_settings: Settings) -> None:
    """A client on the initialize handshake (not the per-request envelope) is named too."""
    trail = asyncio.run(asyncio.wait_for(legacy_session(home_settings), timeout=90))
    assert trail == [("created", "mcp:old-agent")]
