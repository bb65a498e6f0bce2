"""Provenance and scopes around the edges: the migration's tiers for existing memories, keys
made and granted through the CLI, and the doctor naming write keys from before scopes."""

from __future__ import annotations

import json
from pathlib import Path

import sqlalchemy as sa

from cli_support import Cli
from memwarden import Memwarden, Settings
from memwarden.audit.actor import acting_as
from memwarden.core.doctor import DoctorContext
from memwarden.core.doctor.keys import check_legacy_write_keys
from memwarden.db import migrate
from memwarden.db.store import Store


def test_migration_gives_existing_memories_a_tier(settings: Settings) -> None:
    with Memwarden.init(settings) as mw:
        mw.add_project("atlas")
        person = mw.remember("atlas", "Written at the terminal", status="active").memory.id
        with acting_as("api:bot"):
            agent = mw.remember("atlas", "Written by an agent's key").memory.id
        with acting_as("extractor:rules"):
            found = mw.remember("atlas", "Found by the rules").memory.id
        mw.reinforce(agent)
        mw.create_key("old-writer", "write")
    store = Store(settings)
    try:
        migrate.downgrade(store, "0014_provenance@-1")
        assert "0014_provenance" not in migrate.current_revisions(store)
        with store.engine.connect() as conn:
            columns = {c["name"] for c in sa.inspect(conn).get_columns("memories")}
        assert "tier" not in columns
        migrate.upgrade(store)
        with store.engine.connect() as conn:
            rows = {
                row.id: row
                for row in conn.execute(
                    sa.text(
                        "SELECT id, source_kind, source_actor, source_key, tier, "
                        "independent_reinforcements FROM memories"
                    )
                )
            }
            scopes = conn.execute(sa.text("SELECT scopes FROM api_keys")).scalar()
    finally:
        store.dispose()
    assert (rows[person].source_kind, rows[person].tier) == ("person", "verified")
    assert (rows[agent].source_kind, rows[agent].tier, rows[agent].source_key) == (
        "agent",
        "agent",
        "bot",
    )
    assert rows[agent].independent_reinforcements == 1  # the old count is kept
    assert (rows[found].source_kind, rows[found].tier) == ("extraction", "extracted")
    assert scopes is None  # the role's defaults: a write key writes candidates from now on
    with Memwarden(settings) as mw:
        ctx = DoctorContext(settings, mw, None)
        [result] = list(check_legacy_write_keys(ctx))
        assert result.status == "warn" and "old-writer" in result.detail


def test_key_create_and_grant_through_the_cli(tmp_path: Path) -> None:
    cli = Cli(tmp_path / "home")
    cli.run("init")
    made = cli.json("key", "create", "agent", "--role", "write", "--project", "atlas")
    assert made["scopes"]["write_projects"] == ["atlas"] and made["scopes"]["promote"] is False
    granted = cli.json("key", "grant", "agent", "--scope", "promote", "--project", "atlas")
    assert granted["scopes"]["promote"] is True
    assert "unknown scope" in cli.error("key", "grant", "agent", "--scope", "root")
    assert "read key cannot" in cli.error("key", "create", "r", "--role", "read", "-s", "promote")
    listed = cli.run("key", "list").stdout
    assert "promote" in listed and "atlas" in listed
    report = json.loads(cli.run("doctor", "--json").stdout)
    keys = next(c for c in report["checks"] if c["name"] == "keys:scopes")
    assert keys["status"] == "ok"  # made after the upgrade: its scopes are explicit
