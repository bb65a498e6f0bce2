"""POST /interactions: an agent's exchange captured over HTTP, attributed and audited."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from api_support import assert_error, client_for
from memwarden import Memwarden


@pytest.fixture
def client(mw: Memwarden) -> Iterator[TestClient]:
    with client_for(mw) as client:
        yield client


def test_capture_then_read_then_extract(client: TestClient, mw: Memwarden) -> None:
    response = client.post(
        "/interactions",
        json={
            "project": "atlas",
            "prompt": "I prefer tabs over spaces.",
            "response": "Noted.",
            "client": "claude-code",
        },
    )
    assert response.status_code == 201, response.text
    captured = response.json()
    assert (
        captured["client"] == "claude-code" and captured["prompt"] == "I prefer tabs over spaces."
    )
    assert client.get(f"/interactions/{captured['id']}").json() == captured
    rows = mw.recent(action="captured")
    assert [(r.entity_id, r.actor) for r in rows] == [(str(captured["id"]), "api-http")]
    mw.extract()
    assert any("tabs" in m.content for m in mw.list_memories(status="candidate"))


def test_bad_captures_are_clear_4xx_and_write_nothing(client: TestClient, mw: Memwarden) -> None:
    before = len(mw.recent(limit=1000))
    unknown = client.post("/interactions", json={"project": "nope", "prompt": "a", "response": "b"})
    assert_error(unknown, 404)
    empty = client.post("/interactions", json={"project": "atlas", "prompt": " ", "response": "b"})
    assert_error(empty, 422)
    extra = client.post(
        "/interactions", json={"project": "atlas", "prompt": "a", "response": "b", "x": 1}
    )
    assert_error(extra, 422)
    assert_error(client.get("/interactions/999999"), 404)
    assert len(mw.recent(limit=1000)) == before
