"""API keys and roles, on both engines: the CLI that makes them, the migration that holds
them, and the API that checks them (and names their holder in the ledger)."""

from __future__ import annotations

import getpass
from dataclasses import replace

import pytest
import sqlalchemy as sa

from api_support import assert_error, auth, client_for
from cli_support import Cli
from core_support import db_state
from memwarden import Memwarden, Settings
from memwarden.core.provenance import Scopes
from memwarden.db import migrate
from memwarden.db.store import Store
from memwarden.errors import ConflictError


@pytest.fixture
def tokens(mw: Memwarden) -> dict[str, str]:
    return {role: mw.create_key(f"{role}-bot", role)[1] for role in ("read", "write", "admin")}


def test_roles(mw: Memwarden, tokens: dict[str, str]) -> None:
    memory_id = mw.remember("atlas", "The launch window opens in March").memory.id
    with client_for(mw) as client:
        read, write, admin = (auth(tokens[r]) for r in ("read", "write", "admin"))
        assert client.get(f"/memory/{memory_id}", headers=read).status_code == 200
        assert client.post("/recall", json={"query": "launch"}, headers=read).status_code == 200
        before = db_state(mw)
        assert_error(client.post(f"/memory/{memory_id}/promote", headers=read), 403, "forbidden")
        assert_error(
            client.post("/memory", json={"project": "atlas", "content": "x"}, headers=read), 403
        )
        assert_error(client.get("/admin/audit/recent", headers=write), 403, "forbidden")
        assert_error(
            client.post(f"/memory/{memory_id}/erase", json={"reason": "r"}, headers=write), 403
        )
        # A write key writes candidates only: promoting is a scope an admin grants.
        refused = assert_error(client.post(f"/memory/{memory_id}/promote", headers=write), 403)
        assert "promote scope" in refused["message"]
        assert db_state(mw) == before
        mw.set_key_scopes("write-bot", replace(Scopes.for_role("write"), promote=True))
        assert client.post(f"/memory/{memory_id}/promote", headers=write).status_code == 200
        assert client.get("/admin/audit/recent", headers=admin).status_code == 200
        x_api_key = {"X-API-Key": tokens["admin"]}
        assert client.post(f"/memory/{memory_id}/reinforce", headers=x_api_key).status_code == 200
    actors = [(e.action, e.actor) for e in mw.history(memory_id)]
    assert actors == [
        ("created", "library"),
        ("promoted", "api:write-bot"),
        ("reinforced", "api:admin-bot"),
    ]


def test_missing_unknown_and_revoked_keys(mw: Memwarden, tokens: dict[str, str]) -> None:
    with client_for(mw) as client:
        before = db_state(mw)
        missing = client.post("/memory", json={"project": "atlas", "content": "x"})
        assert "API key is required" in assert_error(missing, 401, "unauthorized")["message"]
        assert missing.headers["www-authenticate"].startswith("Bearer")
        forged = tokens["write"][:-4] + "AAAA"
        assert_error(client.get("/memory", headers=auth(forged)), 401, "unauthorized")
        assert_error(client.get("/memory", headers=auth("not-even-a-key")), 401)
        assert_error(client.get("/memory", headers={"X-API-Key": ""}), 401)
        assert db_state(mw) == before
        assert client.get("/memory", headers=auth(tokens["write"])).status_code == 200
        mw.revoke_key("write-bot")
        revoked = client.get("/memory", headers=auth(tokens["write"]))
        assert "revoked" in assert_error(revoked, 401, "unauthorized")["message"]
        # health and metrics stay open for probes and scrapers
        assert client.get("/health").status_code == 200
        assert client.get("/metrics").status_code == 200


def test_open_mode_on_loopback_only(mw: Memwarden) -> None:
    with client_for(mw) as client:
        created = client.post("/memory", json={"project": "atlas", "content": "Open mode works"})
        assert created.status_code == 201
        assert mw.history(created.json()["memory"]["id"])[0].actor == "api-http"
        assert_error(client.get("/memory", headers=auth("mwk_00000000_" + "x" * 43)), 401)
    with client_for(mw, open_allowed=False) as exposed:
        error = assert_error(exposed.get("/memory"), 401, "unauthorized")
        assert "beyond loopback" in error["message"]


@pytest.mark.parametrize(
    "host",
    [
        "evil.example",
        "evil.example:8100",
        "127.0.0.1.nip.io",
        "10.0.0.5",
        "[fe80::1]",
        "evil.example@localhost",
        "localhost#.evil.example",
        "localhost/.evil.example",
    ],
)
def test_an_open_server_refuses_other_host_names(mw: Memwarden, host: str) -> None:
    """DNS rebinding: a page of another site re-points its name at 127.0.0.1 and calls the
    keyless API from the browser; the request still names that site as its host."""
    with client_for(mw) as client:
        before = db_state(mw)
        refused = client.post(
            "/memory", json={"project": "atlas", "content": "planted"}, headers={"host": host}
        )
        error = assert_error(refused, 403, "forbidden")
        assert "loopback" in error["message"]
        assert_error(client.get("/memory", headers={"host": host}), 403, "forbidden")
        assert db_state(mw) == before
        for loopback in ("localhost:8100", "127.0.0.1:8100", "[::1]:8100", "LOCALHOST"):
            assert client.get("/memory", headers={"host": loopback}).status_code == 200


def test_a_key_is_accepted_whatever_the_host_name(mw: Memwarden, tokens: dict[str, str]) -> None:
    with client_for(mw) as client:
        headers = {"host": "memwarden.internal.example", **auth(tokens["read"])}
        assert client.get("/memory", headers=headers).status_code == 200


def test_key_cli_prints_once_and_stores_only_a_hash(settings: Settings) -> None:
    cli = Cli(settings.home, settings.database_url)
    cli.run("init")
    result = cli.run("key", "create", "ci-runner", "--role", "write")
    token = result.stdout.strip()
    assert token.startswith("mwk_") and len(token) > 40 and "shown only now" in result.stderr
    listed = cli.json("key", "list")
    assert [(k["name"], k["role"]) for k in listed] == [("ci-runner", "write")]
    assert token not in cli.run("key", "list").stdout and "key_hash" not in listed[0]
    store = Store(settings)
    try:
        dump = repr(db_state(store))
    finally:
        store.dispose()
    assert token not in dump and token[13:] not in dump  # neither the key nor its secret part
    assert "revoke it first" in cli.error("key", "create", "ci-runner", "--role", "read")
    assert "unknown role" in cli.error("key", "create", "other", "--role", "root")
    assert "no live key" in cli.error("key", "revoke", "nobody")
    cli.run("key", "revoke", "ci-runner")
    assert cli.json("key", "list") == []
    assert [k["revoked_at"] is not None for k in cli.json("key", "list", "--all")] == [True]
    again = cli.run("key", "create", "ci-runner", "--role", "read").stdout.strip()
    assert again != token
    with Memwarden(settings) as mw:
        assert mw.authenticate(token).reason is not None and mw.authenticate(again).ok
        trail = mw.recent(entity_type="api_key")
        assert [(e.entity_id, e.action) for e in reversed(trail)] == [
            ("ci-runner", "created"),
            ("ci-runner", "revoked"),
            ("ci-runner", "created"),
        ]
        assert {e.actor for e in trail} == {f"cli:{getpass.getuser()}"}
        assert all("key_hash" not in (e.after or {}) for e in trail)
        assert mw.verify().ok


def test_duplicate_live_name_is_a_conflict(mw: Memwarden) -> None:
    mw.create_key("alice", "read")
    before = db_state(mw)
    with pytest.raises(ConflictError, match="revoke it first"):
        mw.create_key("alice", "admin")
    assert db_state(mw) == before


def test_migration_0004_downgrades_and_upgrades(settings: Settings) -> None:
    Memwarden.init(settings).close()
    with Memwarden(settings) as mw:
        mw.create_key("alice", "admin")
    store = Store(settings)
    try:
        migrate.downgrade(store, "0004_api_keys-1")
        current = migrate.current_revisions(store)
        assert "0004_api_keys" not in current and current
        with store.engine.connect() as conn:
            tables = set(sa.inspect(conn).get_table_names())
        assert "api_keys" not in tables and "memories" in tables and "ledger" in tables
        migrate.upgrade(store)
        assert migrate.current_revisions(store) == migrate.head_revisions()
    finally:
        store.dispose()
    with Memwarden(settings) as mw:
        assert mw.list_keys() == [] and not mw.keys_configured()
