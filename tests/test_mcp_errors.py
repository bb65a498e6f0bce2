"""Every error an MCP tool meets reaches the agent as a tool error with a code, as the HTTP
API answers it, and an unexpected one is in memwarden's log: the SDK said only "Error
executing tool recall" for anything but memwarden's own errors, with a traceback on stderr
(found by an attack session). Driven through the SDK's client, in process."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import structlog
from mcp import Client

from memwarden import Memwarden
from memwarden.mcp import KEYLESS, build_server


async def _call(mw: Memwarden, tool: str, arguments: dict[str, Any]) -> tuple[bool, str]:
    server = build_server(mw.settings, mw, KEYLESS)
    async with Client(server) as client:
        result = await client.call_tool(tool, arguments)
    text = result.content[0].text if result.content else ""  # type: ignore[union-attr]
    return bool(result.is_error), str(text)


def _called(mw: Memwarden, tool: str, **arguments: Any) -> tuple[bool, str]:
    return asyncio.run(asyncio.wait_for(_call(mw, tool, arguments), timeout=60))


@pytest.mark.parametrize("engine_name", ["postgresql"], indirect=True)
def test_a_value_the_database_refuses_is_an_invalid_argument(mw: Memwarden) -> None:
    failed, text = _called(mw, "recall", query="deluge", project="at\x00las")
    assert failed
    assert "invalid: the database refused a value" in text, text


def test_an_unexpected_error_is_an_internal_error_and_is_logged(
    mw: Memwarden, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_args: Any, **_kwargs: Any) -> Any:
        raise RuntimeError("a defect in recall")

    monkeypatch.setattr(mw, "recall_detailed", broken)
    with structlog.testing.capture_logs() as logs:
        failed, text = _called(mw, "recall", query="deluge", project="atlas")
    assert failed
    assert text.endswith("internal: an internal error occurred; it has been logged"), text
    logged = [e for e in logs if e["event"] == "mcp_internal_error"]
    assert [(e["error_type"], e["error"]) for e in logged] == [
        ("RuntimeError", "a defect in recall")
    ]


def test_memwarden_s_own_errors_keep_their_codes(mw: Memwarden) -> None:
    failed, text = _called(mw, "memory_history", memory_id=999_999)
    assert failed and text.endswith("not_found: memory 999999 not found"), text
