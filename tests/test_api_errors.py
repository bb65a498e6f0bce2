"""Bad input, each with a test, on both engines: a clear 4xx in the one error shape, never a
500, and nothing half-written."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from api_support import assert_error, client_for
from core_support import db_state
from dashboard_support import dashboard_client, sign_in, soup
from memwarden import Memwarden


@pytest.fixture
def client(mw: Memwarden) -> Iterator[TestClient]:
    with client_for(mw, max_body_bytes=64 * 1024) as client:
        yield client


@pytest.fixture
def memory_id(mw: Memwarden) -> int:
    return mw.remember("atlas", "The launch window opens in March").memory.id


def unchanged(
    mw: Memwarden,
    client: TestClient,
    method: str,
    url: str,
    status: int,
    code: str | None = None,
    **kw: object,
) -> dict[str, object]:
    before = db_state(mw)
    error = assert_error(client.request(method, url, **kw), status, code)  # type: ignore[arg-type]
    assert db_state(mw) == before, "a refused request changed the database"
    return error


def malformed(
    mw: Memwarden,
    client: TestClient,
    body: bytes,
    method: str = "POST",
    url: str = "/memory",
    content_type: str = "application/json",
) -> dict[str, object]:
    """A JSON body refused as malformed, the database unchanged; the error object."""
    return unchanged(
        mw,
        client,
        method,
        url,
        422,
        "malformed_json",
        content=body,
        headers={"Content-Type": content_type},
    )


def test_malformed_json(mw: Memwarden, client: TestClient) -> None:
    for body in (b"{not json", b'{"project": "atlas", "content": "x"', b"\xff\xfe", b"[1, 2"):
        error = malformed(mw, client, body)
        assert "JSON" in str(error["message"])


def test_a_key_given_twice_is_refused_not_read_last_wins(
    mw: Memwarden, client: TestClient, memory_id: int
) -> None:
    """Python's json keeps the last of two equal keys: the memory was stored with the second
    content (or one of two metadata values) while a proxy, a log or a client library that
    reads the first saw another request. Refused whole, naming the key, on every route."""
    cases = [
        ("POST", "/memory", b'{"project": "atlas", "content": "a", "content": "b"}', "content"),
        (
            "POST",
            "/memory",
            b'{"project": "atlas", "content": "c", "metadata": {"team": "x", "team": "y"}}',
            "team",
        ),
        ("PATCH", f"/memory/{memory_id}", b'{"content": "d", "content": "e"}', "content"),
        (
            "PUT",
            "/projects/atlas/state",
            b'{"category": "a", "key": "b", "value": "c", "value": "d"}',
            "value",
        ),
    ]
    for method, url, body, key in cases:
        error = malformed(mw, client, body, method, url, "application/json; charset=utf-8")
        assert repr(key) in str(error["message"])
    # A key is named, not echoed whole.
    long_key = "k" * 10_000
    error = malformed(mw, client, f'{{"{long_key}": 1, "{long_key}": 2}}'.encode())
    assert len(str(error["message"])) < 200
    # The route is found first: an unknown path is still a 404, a wrong method a 405.
    twice = b'{"content": "a", "content": "b"}'
    json_type = {"Content-Type": "application/json"}
    unchanged(mw, client, "POST", "/nope", 404, content=twice, headers=json_type)
    unchanged(mw, client, "PUT", "/memory", 405, content=twice, headers=json_type)
    # Nothing else changed: the same body with each key once is taken.
    once = client.post("/memory", json={"project": "atlas", "content": "b"})
    assert once.status_code == 201, once.text


def test_json_nested_too_deeply(mw: Memwarden, memory_id: int) -> None:
    """Deeper than Python's JSON parser can recurse: a clear 422, not a 500."""
    deep = "[" * 100_000 + "]" * 100_000
    inside = '{"project": "atlas", "content": ' + deep + "}"
    with client_for(mw) as roomy:  # the default 1 MiB body limit lets the 200 KB bodies in
        for method, url, body in (
            ("POST", "/memory", deep),
            ("POST", "/memory", inside),
            ("PATCH", f"/memory/{memory_id}", deep),
            ("POST", "/recall", deep),
        ):
            error = unchanged(
                mw,
                roomy,
                method,
                url,
                422,
                "json_too_deep",
                content=body.encode(),
                headers={"Content-Type": "application/json"},
            )
            assert error["message"] == "the JSON body is nested too deeply"
        # Nesting the parser can follow is an ordinary validation error, as before.
        shallow = "[" * 500 + "]" * 500
        unchanged(
            mw,
            roomy,
            "POST",
            "/memory",
            422,
            "validation",
            content=shallow.encode(),
            headers={"Content-Type": "application/json"},
        )
    # The dashboard's form posts are parsed as forms, not JSON: the sign-in page answers.
    token = mw.create_key("reader", "read")[1]
    with dashboard_client(mw) as dashboard:
        refused = sign_in(dashboard, "[" * 300)
        assert refused.status_code == 401
        assert "unknown API key" in soup(refused).get_text()
        assert sign_in(dashboard, token).status_code == 303


def test_wrong_types(mw: Memwarden, client: TestClient, memory_id: int) -> None:
    bad_bodies = [
        {"project": "atlas", "content": 42},
        {"project": "atlas", "content": "x", "confidence": "high"},
        {"project": "atlas", "content": "x", "confidence": True},
        {"project": ["atlas"], "content": "x"},
        {"project": "atlas", "content": "x", "source_chunk_id": "7"},
        [{"project": "atlas", "content": "x"}],
        "just a string",
    ]
    for body in bad_bodies:
        error = unchanged(mw, client, "POST", "/memory", 422, "validation", json=body)
        assert error["details"], error
    unchanged(mw, client, "POST", "/memory/abc/promote", 422, "validation")
    unchanged(mw, client, "POST", "/recall", 422, "validation", json={"query": "x", "k": "ten"})
    unchanged(
        mw, client, "PATCH", f"/memory/{memory_id}", 422, "validation", json={"confidence": "1"}
    )


def test_unknown_fields(mw: Memwarden, client: TestClient, memory_id: int) -> None:
    error = unchanged(
        mw,
        client,
        "POST",
        "/memory",
        422,
        "validation",
        json={"project": "atlas", "content": "x", "owner": "me"},
    )
    assert "owner" in str(error["message"])
    unchanged(
        mw, client, "POST", f"/memory/{memory_id}/promote", 422, json={"note": "x", "force": True}
    )
    unchanged(
        mw,
        client,
        "PUT",
        "/projects/atlas/state",
        422,
        json={"category": "a", "key": "b", "value": "c", "x": 1},
    )


def test_oversized_bodies(mw: Memwarden, client: TestClient) -> None:
    big = {"project": "atlas", "uri": "big.md", "text": "word " * 20_000}
    error = unchanged(mw, client, "POST", "/documents", 413, "too_large", json=big)
    assert "65536" in str(error["message"])

    def chunks() -> Iterator[bytes]:  # no Content-Length: only the streamed body can tell
        yield b'{"project": "atlas", "uri": "big.md", "text": "'
        for _ in range(100):
            yield b"x" * 1024
        yield b'"}'

    unchanged(
        mw,
        client,
        "POST",
        "/documents",
        413,
        "too_large",
        content=chunks(),
        headers={"Content-Type": "application/json"},
    )
    small = {"project": "atlas", "uri": "small.md", "text": "word " * 100}
    assert client.post("/documents", json=small).status_code == 201


def test_content_over_the_domain_limit(mw: Memwarden) -> None:
    too_long = "x" * (mw.settings.max_content_bytes + 1)
    with client_for(mw) as roomy:  # the default 1 MiB body limit lets it reach the domain
        error = unchanged(
            mw,
            roomy,
            "POST",
            "/memory",
            422,
            "invalid",
            json={"project": "atlas", "content": too_long},
        )
    assert "MEMWARDEN_MAX_CONTENT_BYTES" in str(error["message"])


def test_unknown_ids(mw: Memwarden, client: TestClient) -> None:
    for method, url in (
        ("GET", "/memory/999999"),
        ("POST", "/memory/999999/promote"),
        ("POST", "/memory/999999/reinforce"),
        ("PATCH", "/memory/999999"),
        ("GET", "/memory/999999/audit"),
        ("GET", "/projects/ghost/state"),
    ):
        kwargs = {"json": {"content": "new"}} if method == "PATCH" else {}
        unchanged(mw, client, method, url, 404, "not_found", **kwargs)
    unchanged(mw, client, "POST", "/memory", 404, json={"project": "ghost", "content": "x"})
    unchanged(mw, client, "POST", "/recall", 404, json={"query": "x", "project": "ghost"})
    unchanged(mw, client, "POST", "/memory/1/supersede", 404, json={"by": 999999})


def test_ids_too_large_or_negative(mw: Memwarden, client: TestClient) -> None:
    for url in (f"/memory/{2**63}", "/memory/0", "/memory/-1", f"/memory/{10**30}/audit"):
        unchanged(mw, client, "GET", url, 422, "validation")
    unchanged(
        mw,
        client,
        "POST",
        "/memory",
        422,
        json={"project": "atlas", "content": "x", "source_chunk_id": 2**64},
    )


def test_illegal_transitions(mw: Memwarden, client: TestClient, memory_id: int) -> None:
    mw.promote(memory_id)
    error = unchanged(mw, client, "POST", f"/memory/{memory_id}/promote", 409, "illegal_transition")
    assert "active" in str(error["message"])
    unchanged(mw, client, "POST", f"/memory/{memory_id}/reject", 409, "illegal_transition")
    unchanged(mw, client, "POST", f"/memory/{memory_id}/supersede", 409, json={"by": memory_id})
    other = mw.remember("atlas", "Another statement").memory.id
    mw.reject(other)
    unchanged(mw, client, "POST", f"/memory/{other}/reinforce", 409, "illegal_transition")
    unchanged(
        mw,
        client,
        "POST",
        f"/memory/{memory_id}/supersede",
        422,
        "invalid",
        json={"by": 1, "content": "x"},
    )
    dup = mw.remember("atlas", "A third statement").memory.id
    unchanged(
        mw,
        client,
        "PATCH",
        f"/memory/{dup}",
        409,
        "conflict",
        json={"content": "The launch window opens in March"},
    )


def test_limit_out_of_range(mw: Memwarden, client: TestClient) -> None:
    for limit in ("0", "501", "-1", "ten", "1e3"):
        error = unchanged(mw, client, "GET", f"/memory?limit={limit}", 422, "validation")
        assert "limit" in str(error["message"])
    unchanged(mw, client, "GET", "/admin/audit/recent?limit=1001", 422)
    unchanged(mw, client, "GET", "/memory?after=0", 422)
    unchanged(mw, client, "GET", "/memory?status=sleeping", 422)
    unchanged(mw, client, "POST", "/recall", 422, json={"query": "x", "k": 101})
    unchanged(
        mw,
        client,
        "POST",
        "/context/build",
        422,
        json={"query": "x", "project": "atlas", "budget": 10},
    )
    assert client.get("/memory?limit=500").status_code == 200


def test_unknown_route_and_method(mw: Memwarden, client: TestClient) -> None:
    error = unchanged(mw, client, "GET", "/no/such/route", 404, "not_found")
    assert "/no/such/route" in str(error["message"])
    response = client.delete("/recall")
    assert_error(response, 405, "method_not_allowed")
    assert "POST" in response.headers["allow"]


def test_hostile_strings_are_refused_not_crashed(mw: Memwarden, client: TestClient) -> None:
    """NUL characters and lone surrogates cannot be stored by either engine: a 422, not a 500."""
    unchanged(mw, client, "POST", "/memory", 422, json={"project": "atlas", "content": "a\x00b"})
    unchanged(
        mw,
        client,
        "POST",
        "/documents",
        422,
        json={"project": "atlas", "uri": "a\x00", "text": "t"},
    )
    unchanged(mw, client, "GET", "/memory?project=at%00las", 422)
    surrogate = b'{"project": "atlas", "content": "\\ud800 lone"}'
    unchanged(
        mw,
        client,
        "POST",
        "/memory",
        422,
        content=surrogate,
        headers={"Content-Type": "application/json"},
    )
    unchanged(mw, client, "GET", "/admin/audit/recent?since=9999-12-31T23:59:59-05:00", 422)


def test_wrong_content_type(mw: Memwarden, client: TestClient) -> None:
    unchanged(
        mw,
        client,
        "POST",
        "/memory",
        422,
        content=b"project=atlas&content=x",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
