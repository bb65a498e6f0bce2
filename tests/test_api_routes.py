"""Every route through the app, on both engines: what it returns and what the ledger records."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from api_support import assert_error, client_for
from memwarden import Memwarden

STATEMENT = "The launch window opens in March"


@pytest.fixture
def client(mw: Memwarden) -> Iterator[TestClient]:
    with client_for(mw) as client:
        yield client


def create(client: TestClient, content: str = STATEMENT, **fields: object) -> dict[str, object]:
    response = client.post("/memory", json={"project": "atlas", "content": content, **fields})
    assert response.status_code == 201, response.text
    memory = response.json()["memory"]
    assert isinstance(memory, dict)
    return memory


def actions(client: TestClient, memory_id: int) -> list[tuple[str, str]]:
    entries = client.get(f"/memory/{memory_id}/audit").json()["entries"]
    return [(e["action"], e["actor"]) for e in entries]


def test_lifecycle_each_step_one_ledger_entry(client: TestClient, mw: Memwarden) -> None:
    memory = create(client, type="project", note="from the kickoff")
    assert memory["status"] == "candidate" and memory["type"] == "project"
    again = client.post(
        "/memory", json={"project": "atlas", "content": STATEMENT.upper(), "type": "project"}
    )
    assert again.status_code == 200 and again.json()["reinforced"] is True
    assert again.json()["memory"]["id"] == memory["id"]
    mid = memory["id"]
    assert (
        client.post(f"/memory/{mid}/promote", json={"note": "checked"}).json()["status"] == "active"
    )
    assert client.post(f"/memory/{mid}/reinforce").json()["reinforcement_count"] == 2
    updated = client.patch(f"/memory/{mid}", json={"confidence": 0.9, "note": "sure now"}).json()
    assert updated["confidence"] == 0.9
    assert client.get(f"/memory/{mid}").json() == updated
    assert client.post(f"/memory/{mid}/invalidate").json()["status"] == "invalid"
    assert actions(client, mid) == [
        ("created", "api-http"),
        ("reinforced", "api-http"),
        ("promoted", "api-http"),
        ("reinforced", "api-http"),
        ("updated", "api-http"),
        ("invalidated", "api-http"),
    ]
    history = client.get(f"/memory/{mid}/audit").json()["entries"]
    assert history[0]["note"] == "from the kickoff" and history[2]["note"] == "checked"
    assert history[4]["before"]["confidence"] == 0.6 and history[4]["after"]["confidence"] == 0.9
    assert mw.verify().ok


def test_reject_supersede_revert_erase(client: TestClient, mw: Memwarden) -> None:
    rejected = create(client, "Use the blue tank")
    assert client.post(f"/memory/{rejected['id']}/reject").json()["status"] == "rejected"
    old = create(client, "The rocket has two stages", status="active")
    result = client.post(
        f"/memory/{old['id']}/supersede", json={"content": "The rocket has three stages"}
    )
    assert result.status_code == 200, result.text
    body = result.json()
    assert body["superseded"]["status"] == "superseded"
    assert body["superseded"]["superseded_by"] == body["successor"]["id"]
    assert body["successor"]["content"] == "The rocket has three stages"
    target = create(client, "Fuel is kerosene", status="active")
    client.patch(f"/memory/{target['id']}", json={"content": "Fuel is methane"})
    first_seq = client.get(f"/memory/{target['id']}/audit").json()["entries"][0]["seq"]
    reverted = client.post(f"/memory/{target['id']}/revert", json={"to_seq": first_seq})
    assert reverted.json()["content"] == "Fuel is kerosene"
    erased = client.post(f"/memory/{target['id']}/erase", json={"reason": "asked to forget"})
    assert erased.json()["status"] == "erased" and erased.json()["content"] == ""
    trail = client.get(f"/memory/{target['id']}/audit").json()["entries"]
    assert [e["action"] for e in trail] == ["created", "updated", "reverted", "erased"]
    assert all(e["erased"] for e in trail[:-1]) and trail[0]["after"] is None
    assert "kerosene" not in client.get(f"/memory/{target['id']}/audit").text
    assert mw.verify().ok


def test_list_filters_and_cursor_pages(client: TestClient, mw: Memwarden) -> None:
    mw.add_project("orion")
    ids = [create(client, f"Fact number {i}", type="knowledge")["id"] for i in range(7)]
    create(client, "Prefers metric units", type="preference")
    client.post("/memory", json={"project": "orion", "content": "Other project fact"})
    client.post(f"/memory/{ids[0]}/promote")
    seen: list[int] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, object] = {"project": "atlas", "type": "knowledge", "limit": 3}
        if cursor is not None:
            params["after"] = cursor
        page = client.get("/memory", params=params).json()
        seen += [m["id"] for m in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted(ids, reverse=True) and pages == 3
    knowledge = {"project": "atlas", "type": "knowledge", "limit": 3}
    first = client.get("/memory", params=knowledge).json()
    by_name = {**knowledge, "cursor": first["next_cursor"]}
    assert client.get("/memory", params=by_name).json()["items"][0]["id"] == seen[3]
    both = client.get("/memory", params={**by_name, "after": first["next_cursor"] + 1})
    assert both.status_code == 422 and "not both" in both.text
    active = client.get("/memory", params={"status": "active"}).json()
    assert [m["id"] for m in active["items"]] == [ids[0]] and active["next_cursor"] is None
    orion = client.get("/memory", params={"project": "orion"}).json()["items"]
    assert [m["content"] for m in orion] == ["Other project fact"]


def test_projects_and_state(client: TestClient) -> None:
    made = client.post("/projects", json={"name": "orion", "description": "the capsule"})
    assert made.status_code == 201 and made.json()["description"] == "the capsule"
    assert_error(client.post("/projects", json={"name": "orion"}), 409, "conflict")
    assert [p["name"] for p in client.get("/projects").json()] == ["atlas", "orion"]
    assert client.get("/projects/orion").json()["name"] == "orion"
    assert_error(client.get("/projects/nope"), 404, "not_found")
    put = client.put(
        "/projects/orion/state",
        json={"category": "schedule", "key": "launch", "value": "2027-03", "source": "plan v2"},
    )
    assert put.status_code == 200 and put.json()["value"] == "2027-03"
    client.put("/projects/orion/state", json={"category": "team", "key": "lead", "value": "Ada"})
    listed = client.get("/projects/orion/state").json()
    assert [(e["category"], e["key"]) for e in listed] == [("schedule", "launch"), ("team", "lead")]
    one = client.get("/projects/orion/state", params={"category": "team", "key": "lead"}).json()
    assert [e["value"] for e in one] == ["Ada"]
    assert_error(client.get("/projects/orion/state", params={"category": "team", "key": "x"}), 404)
    assert_error(client.delete("/projects/orion"), 409, "conflict")
    for category, key in (("schedule", "launch"), ("team", "lead")):
        gone = client.delete("/projects/orion/state", params={"category": category, "key": key})
        assert gone.status_code == 200
    assert client.delete("/projects/orion").status_code == 204
    assert_error(client.delete("/projects/orion"), 404)
    recent = client.get("/admin/audit/recent", params={"project": "orion"}).json()["entries"]
    assert [e["action"] for e in recent] == [
        "deleted",
        "state_deleted",
        "state_deleted",
        "state_set",
        "state_set",
        "created",
    ]


def test_documents_recall_and_context(client: TestClient) -> None:
    text = "# Propulsion\n\nThe engine burns liquid methane and oxygen.\n\n# Crew\n\nFour seats."
    doc = {"project": "atlas", "uri": "notes/propulsion.md", "text": text, "title": "Propulsion"}
    first = client.post("/documents", json=doc)
    assert first.status_code == 201 and first.json()["status"] == "created"
    assert first.json()["chunks"] >= 1
    again = client.post("/documents", json=doc)
    assert again.status_code == 200 and again.json()["status"] == "unchanged"
    memory = create(client, "The engine is throttleable to 40 percent", status="active")
    client.put(
        "/projects/atlas/state", json={"category": "engine", "key": "fuel", "value": "methane"}
    )
    hits = client.post("/recall", json={"query": "engine methane", "project": "atlas"}).json()[
        "hits"
    ]
    kinds = {(h["kind"], h["id"]) for h in hits}
    assert ("memory", memory["id"]) in kinds and any(kind == "chunk" for kind, _ in kinds)
    chunk = next(h for h in hits if h["kind"] == "chunk")
    assert chunk["provenance"]["document"] == "notes/propulsion.md"
    only_memories = client.post(
        "/recall", json={"query": "engine", "types": ["knowledge"], "k": 5}
    ).json()["hits"]
    assert [h["kind"] for h in only_memories] == ["memory"]
    pack = client.post(
        "/context/build", json={"query": "engine", "project": "atlas", "budget": 2000}
    )
    assert pack.status_code == 200
    kinds_in_order = [item["kind"] for item in pack.json()["items"]]
    assert kinds_in_order[0] == "state" and "memory" in kinds_in_order and "chunk" in kinds_in_order
    assert kinds_in_order.index("memory") < kinds_in_order.index("chunk")
    assert pack.json()["text"].startswith("## Project state")


def test_recent_audit_filters_newest_first(client: TestClient, mw: Memwarden) -> None:
    before = datetime.now(UTC)
    ids = [create(client, f"Statement {i}")["id"] for i in range(60)]
    client.post(f"/memory/{ids[0]}/promote")
    recent = client.get("/admin/audit/recent").json()
    entries = recent["entries"]
    assert len(entries) == 50  # the default
    seqs = [e["seq"] for e in entries]
    assert seqs == sorted(seqs, reverse=True)
    assert entries[0]["action"] == "promoted"
    assert len({e["entity_id"] for e in entries}) == 50  # across many memories
    rest = client.get(
        "/admin/audit/recent", params={"before_seq": recent["next_before_seq"]}
    ).json()
    assert rest["entries"][0]["seq"] == seqs[-1] - 1
    promoted = client.get("/admin/audit/recent", params={"action": "promoted"}).json()["entries"]
    assert [e["entity_id"] for e in promoted] == [str(ids[0])]
    by_actor = client.get("/admin/audit/recent", params={"actor": "api-http", "limit": 1000}).json()
    assert len(by_actor["entries"]) == 61 and by_actor["next_before_seq"] is None
    assert (
        client.get("/admin/audit/recent", params={"actor": "someone-else"}).json()["entries"] == []
    )
    window = {
        "since": before.isoformat(),
        "until": (datetime.now(UTC) + timedelta(minutes=1)).isoformat(),
    }
    assert (
        len(client.get("/admin/audit/recent", params={**window, "limit": 1000}).json()["entries"])
        == 61
    )
    future = {"since": (datetime.now(UTC) + timedelta(hours=1)).isoformat()}
    assert client.get("/admin/audit/recent", params=future).json()["entries"] == []
    naive = {"until": "2000-01-01T00:00:00"}  # no offset: UTC
    assert client.get("/admin/audit/recent", params=naive).json()["entries"] == []
    today = {"since": before.date().isoformat(), "limit": 1000}  # a bare date: its midnight UTC
    assert len(client.get("/admin/audit/recent", params=today).json()["entries"]) >= 61
    plus_as_space = (
        "/admin/audit/recent?limit=1000&since=" + before.strftime("%Y-%m-%dT%H:%M:%S") + " 00:00"
    )  # an unencoded "+00:00", as a pasted curl line sends it
    assert len(client.get(plus_as_space).json()["entries"]) >= 61


def test_verify_and_anchor(client: TestClient) -> None:
    create(client)
    anchor = client.get("/admin/audit/anchor").json()
    assert anchor["anchor"] == f"{anchor['seq']}:{anchor['tag']}" and anchor["seq"] >= 2
    report = client.post("/admin/audit/verify", json={"anchor": anchor["anchor"]}).json()
    assert report["ok"] is True and report["checked_against"] == ["witness", "anchor"]
    assert client.post("/admin/audit/verify").json()["rows_checked"] == anchor["seq"]
    forged = f"{anchor['seq']}:{'0' * 64}"
    bad = client.post("/admin/audit/verify", json={"anchor": forged}).json()
    assert bad["ok"] is False and bad["first_bad_seq"] == anchor["seq"]
    assert_error(client.post("/admin/audit/verify", json={"anchor": "nonsense"}), 422, "invalid")


def test_health_reports_schema_and_head(client: TestClient, mw: Memwarden) -> None:
    create(client)
    health = client.get("/health")
    assert health.status_code == 200
    body = health.json()
    assert body["status"] == "ok" and body["database"] == "reachable"
    assert body["schema_current"] is True and "0014_provenance" in body["schema_revisions"]
    assert (
        body["ledger_head"]["seq"] == mw.anchor().seq
        and body["ledger_head"]["tag"] == mw.anchor().tag
    )
    assert body["engine"] == mw.store.dialect


def test_openapi_declares_the_error_model(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    operation = spec["paths"]["/memory/{memory_id}/promote"]["post"]
    for status in ("401", "403", "404", "409", "413", "422", "503"):
        schema = operation["responses"][status]["content"]["application/json"]["schema"]
        assert schema == {"$ref": "#/components/schemas/ErrorBody"}
    assert "HTTPValidationError" not in spec["components"]["schemas"]
