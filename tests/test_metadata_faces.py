"""Metadata and ranking through every face (issue 17): the CLI (``--metadata``, ``--where``,
``--rank-by``; a bad value is one error line and nothing written), the HTTP API (create,
update, list and recall; 422 problem bodies), the MCP tools (a tool error), and the
dashboard's memory page (metadata escaped, what the memory replaced). Both engines."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import sqlalchemy as sa
from mcp import Client

from api_support import assert_error, auth, client_for
from cli_support import Cli
from dashboard_support import assert_no_markup_from, dashboard_client, sign_in, soup
from memwarden import Memwarden, Settings
from memwarden.mcp import build_server

HOSTILE = '<script>alert(1)</script><img src=x onerror="alert(2)">'


def ledger_rows(settings: Settings) -> int:
    with Memwarden(settings) as mw, mw.store.read() as conn:
        return int(conn.execute(sa.text("SELECT count(*) FROM ledger")).scalar_one())


def test_cli_metadata_add_update_list_recall(settings: Settings) -> None:
    cli = Cli(settings.home, settings.database_url, MEMWARDEN_EMBEDDER="none")
    cli.run("init")
    cli.run("project", "add", "atlas")
    added = cli.json(
        "memory", "add", "The fuel budget is 40 tonnes", "-p", "atlas", "-t", "project",
        "--status", "active", "--metadata", '{"team": "core", "importance": 0.9}',
    )  # fmt: skip
    memory_id = added["memory"]["id"]
    assert added["memory"]["metadata"] == {"importance": 0.9, "team": "core"}
    cli.run("memory", "add", "The fuel budget was 38 tonnes", "-p", "atlas", "-t", "project",
            "--status", "active", "--metadata", '{"team": "ops"}')  # fmt: skip
    before = ledger_rows(settings)
    for bad, says in (
        ("[1]", "must be a JSON object"),
        ("{oops", "not valid JSON"),
        ('{"a":{"b":{"c":{"d":{"e":1}}}}}', "deeper than 4"),
    ):
        line = cli.error("memory", "add", "Another fact", "-p", "atlas", "-t", "project",
                         "--metadata", bad)  # fmt: skip
        assert says in line
    assert "key=value" in cli.error("memory", "list", "--where", "team")
    assert ledger_rows(settings) == before  # nothing half-written
    listed = cli.json("memory", "list", "-p", "atlas", "--where", "team=core")
    assert [m["id"] for m in listed] == [memory_id]
    shown = cli.run("memory", "show", str(memory_id)).stdout
    assert '"team": "core"' in shown
    hits = cli.json("recall", "fuel budget", "-p", "atlas", "--where", "team=core")
    assert [h["id"] for h in hits] == [memory_id]
    assert hits[0]["provenance"]["metadata"]["team"] == "core"
    assert "metadata" in cli.run("recall", "fuel budget", "-p", "atlas").stdout
    assert "rank_by" in cli.error("recall", "fuel", "--rank-by", "popularity")
    cli.run("recall", "fuel budget", "-p", "atlas", "--rank-by", "importance")
    updated = cli.json("memory", "update", str(memory_id), "--metadata", '{"team": "ops"}')
    assert updated["metadata"] == {"team": "ops"}
    history = cli.run("audit", "history", str(memory_id)).stdout
    assert "metadata" in history


def test_http_metadata_create_update_list_recall_and_422s(mw: Memwarden) -> None:
    token = mw.create_key("writer", "write")[1]
    admin = mw.create_key("boss", "admin")[1]
    with client_for(mw) as client:
        made = client.post(
            "/memory",
            json={"project": "atlas", "content": "The rover weighs 900 kg",
                  "metadata": {"team": "core", "n": 2}},
            headers=auth(token),
        )  # fmt: skip
        assert made.status_code == 201, made.text
        memory = made.json()["memory"]
        assert memory["metadata"] == {"n": 2, "team": "core"}
        before = ledger_rows(mw.settings)
        for bad in ([1, 2], "text", {"a": {"b": {"c": {"d": {"e": 1}}}}}, {"x" * 65: 1}):
            refused = client.post(
                "/memory",
                json={"project": "atlas", "content": "Other", "metadata": bad},
                headers=auth(token),
            )
            assert_error(refused, 422)
        big = client.patch(
            f"/memory/{memory['id']}", json={"metadata": {"k": "v" * 9000}}, headers=auth(admin)
        )
        assert "8192" in assert_error(big, 422)["message"]
        assert ledger_rows(mw.settings) == before
        changed = client.patch(
            f"/memory/{memory['id']}", json={"metadata": {"team": "ops"}}, headers=auth(admin)
        )
        assert changed.status_code == 200, changed.text
        assert changed.json()["metadata"] == {"team": "ops"}
        client.post(f"/memory/{memory['id']}/promote", headers=auth(admin))
        page = client.get(
            "/memory",
            params={"project": "atlas", "where": ["team=ops", "n=2"]},
            headers=auth(token),
        )
        assert page.status_code == 200, page.text
        assert [] == page.json()["items"]  # n went with the replaced object
        page = client.get("/memory", params={"where": "team=ops"}, headers=auth(token)).json()
        assert [m["id"] for m in page["items"]] == [memory["id"]]
        assert_error(client.get("/memory", params={"where": "team"}, headers=auth(token)), 422)
        found = client.post(
            "/recall",
            json={"query": "rover", "where": {"team": "ops"}, "rank_by": "recency"},
            headers=auth(token),
        )
        assert found.status_code == 200, found.text
        assert [h["id"] for h in found.json()["hits"]] == [memory["id"]]
        none = client.post(
            "/recall", json={"query": "rover", "where": {"team": "core"}}, headers=auth(token)
        )
        assert none.json()["hits"] == []
        assert_error(
            client.post("/recall", json={"query": "rover", "rank_by": "x"}, headers=auth(token)),
            422,
        )


def test_mcp_remember_with_metadata_recall_where_and_a_tool_error(mw: Memwarden) -> None:
    server = build_server(mw.settings, mw)

    async def session() -> tuple[Any, Any, Any]:
        async with Client(server) as client:
            made = await client.call_tool(
                "remember",
                {"content": "The dock is on level 3", "project": "atlas",
                 "metadata": {"room": "dock"}},
            )  # fmt: skip
            bad = await client.call_tool(
                "remember", {"content": "Other", "project": "atlas", "metadata": {"": 1}}
            )
            await client.call_tool("remember", {"content": "Untagged", "project": "atlas"})
            queue = await client.call_tool("list_candidates", {"where": {"room": "dock"}})
            return made, bad, queue

    made, bad, queue = asyncio.run(session())
    assert [m["content"] for m in queue.structured_content["candidates"]] == [
        "The dock is on level 3"
    ]
    assert not made.is_error
    created = made.structured_content["memory"]
    assert created["metadata"] == {"room": "dock"}
    assert bad.is_error and "non-empty strings" in json.dumps(bad.content[0].text)
    mw.promote(created["id"])

    async def recalled() -> Any:
        async with Client(server) as client:
            return await client.call_tool(
                "recall", {"query": "dock level", "where": {"room": "dock"}}
            )

    found = asyncio.run(recalled())
    assert not found.is_error
    hits = found.structured_content["hits"]
    assert [h["id"] for h in hits] == [created["id"]]
    assert hits[0]["provenance"]["metadata"] == {"room": "dock"}


def test_dashboard_shows_metadata_escaped_and_what_a_memory_replaced(mw: Memwarden) -> None:
    old = mw.remember("atlas", "The launch is in March", status="active").memory
    _, successor = mw.supersede(old.id, content="The launch is in April")
    mw.update(successor.id, metadata={"note": HOSTILE, "level": 3})
    token = mw.create_key("viewer", "read")[1]
    with dashboard_client(mw) as client:
        sign_in(client, token)
        response = client.get(f"/dashboard/memory/{successor.id}")
        assert response.status_code == 200
        page = soup(response)
        assert_no_markup_from(page)
        shown = page.select_one("#memory-metadata")
        assert shown is not None and HOSTILE in shown.get_text() and "level" in shown.get_text()
        replaced = page.select_one("#memory-supersedes")
        assert replaced is not None
        assert f"memory #{old.id}" in replaced.get_text()
        assert "The launch is in March" in replaced.get_text()
