"""POST /interactions: an agent's exchange captured over HTTP, attributed and audited."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

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


def test_a_past_exchange_keeps_its_time(client: TestClient, mw: Memwarden) -> None:
    base = {"project": "atlas", "prompt": "We chose PostgreSQL 16.", "response": "Noted."}
    cases = {
        "2025-03-04T05:06:07Z": "2025-03-04T05:06:07+00:00",
        "2025-03-04T07:06:07+02:00": "2025-03-04T05:06:07+00:00",  # stored in UTC
        "2025-03-04T05:06:07": "2025-03-04T05:06:07+00:00",  # no offset: UTC
        "2025-03-04": "2025-03-04T00:00:00+00:00",
    }
    ids = []
    for given, stored in cases.items():
        response = client.post("/interactions", json={**base, "created_at": given})
        assert response.status_code == 201, response.text
        captured = response.json()
        ids.append(str(captured["id"]))
        assert datetime.fromisoformat(captured["created_at"]) == datetime.fromisoformat(stored)
        again = mw.get_interaction(captured["id"])
        assert again.created_at == datetime.fromisoformat(stored)
    # Within the clock-skew allowance is fine; without a time, it is now.
    soon = (datetime.now(UTC) + timedelta(minutes=2)).isoformat()
    assert client.post("/interactions", json={**base, "created_at": soon}).status_code == 201
    now = client.post("/interactions", json=base).json()
    age = datetime.now(UTC) - datetime.fromisoformat(now["created_at"]).replace(tzinfo=UTC)
    assert abs(age) < timedelta(minutes=1)
    # The ledger records the given time, under the caller's actor.
    entries = {e.entity_id: e for e in mw.recent(action="captured")}
    first = entries[ids[0]]
    assert first.actor == "api-http" and first.after is not None
    assert first.after["created_at"] == "2025-03-04T05:06:07+00:00"


def test_a_bad_or_future_time_is_refused(client: TestClient, mw: Memwarden) -> None:
    base = {"project": "atlas", "prompt": "a", "response": "b"}
    before = len(mw.recent(limit=1000))
    later = (datetime.now(UTC) + timedelta(minutes=6)).isoformat()
    future = assert_error(client.post("/interactions", json={**base, "created_at": later}), 422)
    assert "more than 5 minutes in the future" in future["message"]
    for bad in ("yesterday", "2025-13-01", "9999-12-31T23:59:59-05:00"):
        error = assert_error(client.post("/interactions", json={**base, "created_at": bad}), 422)
        assert "time" in error["message"], error
    for wrong in (1700000000, ["2025-01-01"], True):
        assert_error(client.post("/interactions", json={**base, "created_at": wrong}), 422)
    assert len(mw.recent(limit=1000)) == before
