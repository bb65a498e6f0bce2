"""Each face logs its operations with its transport: http (the API), mcp (the MCP server);
the CLI's is in test_oplog_cli. Both engines."""

from __future__ import annotations

import asyncio

from mcp import Client
from mcp_types import Implementation

from api_support import client_for
from memwarden import Settings
from memwarden.audit.oplog import current_transport
from memwarden.mcp import build_server
from oplog_support import open_logged, rows


def test_http_requests_are_logged_as_transport_http(settings: Settings) -> None:
    mw = open_logged(settings, actions="recall,context,add_project,list_projects")
    try:
        mw.add_project("atlas")
        with client_for(mw) as client:
            assert (
                client.post(
                    "/recall", json={"query": "launch window", "project": "atlas"}
                ).status_code
                == 200
            )
            assert (
                client.post(
                    "/context/build", json={"query": "launch", "project": "atlas"}
                ).status_code
                == 200
            )
            assert client.get("/projects").status_code == 200
        stored = rows(mw)
    finally:
        mw.close()
    assert [(r.action, r.transport) for r in stored] == [
        ("add_project", "library"),
        ("recall", "http"),
        ("context", "http"),
        ("list_projects", "http"),
    ]
    assert current_transport() == "library"  # nothing leaked out of the requests


def test_mcp_tool_calls_are_logged_as_transport_mcp(settings: Settings) -> None:
    mw = open_logged(settings, actions="*")

    async def session() -> None:
        info = Implementation(name="probe-agent", version="1.0")
        async with Client(build_server(mw.settings, mw), client_info=info) as client:
            result = await client.call_tool(
                "recall", {"query": "launch window", "project": "atlas"}
            )
            assert not result.is_error, result.content

    try:
        mw.add_project("atlas")
        asyncio.run(asyncio.wait_for(session(), timeout=60))
        stored = rows(mw)
    finally:
        mw.close()
    recall = [r for r in stored if r.action == "recall"]
    assert [(r.transport, r.actor) for r in recall] == [("mcp", "mcp:probe-agent")]
