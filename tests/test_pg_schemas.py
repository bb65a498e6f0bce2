"""Stores in named PostgreSQL schemas: one per tenant, side by side in one database, never
seeing each other's rows, ledgers or keys; migrations, verify and the integrity scan per schema.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from cli_support import Cli
from conftest import PG_ADMIN_URL, require_postgres
from memwarden import Memwarden, Settings
from memwarden.db import migrate
from memwarden.db.store import Store


@pytest.fixture
def tenants(pg_schema_url: str) -> Iterator[tuple[str, str]]:
    """Two schema names nobody uses yet (made by memwarden itself), dropped afterwards."""
    require_postgres()
    names = (f"tenant_a_{uuid.uuid4().hex[:8]}", f"tenant_b_{uuid.uuid4().hex[:8]}")
    try:
        yield names
    finally:
        admin = sa.create_engine(PG_ADMIN_URL)
        with admin.begin() as conn:
            for name in names:
                conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
        admin.dispose()


def tables_in(schema: str) -> set[str]:
    admin = sa.create_engine(PG_ADMIN_URL)
    try:
        with admin.connect() as conn:
            return set(sa.inspect(conn).get_table_names(schema=schema))
    finally:
        admin.dispose()


def test_two_tenants_side_by_side(
    tmp_path: Path, pg_schema_url: str, tenants: tuple[str, str]
) -> None:
    a_name, b_name = tenants
    # One home and one URL for both (the URL even carries the test's own search_path): the
    # schema setting alone separates them.
    a = Settings(home=tmp_path / "home", database_url=pg_schema_url, pg_schema=a_name)
    b = Settings(home=tmp_path / "home", database_url=pg_schema_url, pg_schema=b_name)
    assert a.resolved_ledger_key_file != b.resolved_ledger_key_file
    assert a.resolved_witness_file != b.resolved_witness_file
    assert a.resolved_alert_log.parent == a.data_home == tmp_path / "home" / "schemas" / a_name
    with Memwarden.init(a) as mw_a, Memwarden.init(b) as mw_b:
        for mw, fact in ((mw_a, "Tenant A launches in March"), (mw_b, "Tenant B launches in May")):
            mw.add_project("atlas")  # the same project name in both
            mw.set_state("atlas", "schedule", "launch", fact)
            mw.promote(mw.remember("atlas", fact).memory.id)

        assert [m.content for m in mw_a.list_memories()] == ["Tenant A launches in March"]
        assert [m.content for m in mw_b.list_memories()] == ["Tenant B launches in May"]
        assert [h.content for h in mw_b.recall("launches", "atlas")] == ["Tenant B launches in May"]
        assert mw_b.get_state("atlas", "schedule", "launch").value == "Tenant B launches in May"
        # Each its own chain: the same sequence numbers, different tags (different keys).
        assert mw_a.anchor().seq == mw_b.anchor().seq == 4
        assert mw_a.anchor().tag != mw_b.anchor().tag
        assert [r.actor for r in mw_a.recent()] == [r.actor for r in mw_b.recent()]
        mw_a.create_key("alice", "write")
        assert [k.name for k in mw_a.list_keys()] == ["alice"]
        assert mw_b.list_keys() == []
        assert mw_a.verify().ok and mw_b.verify().ok
        assert mw_a.integrity_check().status == "clean"
        assert mw_b.integrity_check().status == "clean"
    assert a.resolved_ledger_key_file.read_bytes() != b.resolved_ledger_key_file.read_bytes()

    # Everything landed in the tenants' schemas, created on init; nothing in the URL's own.
    test_schema = pg_schema_url.rsplit("%3D", 1)[1]
    assert tables_in(test_schema) == set()
    assert {"memories", "ledger", "api_keys", "alembic_version"} <= tables_in(a_name)
    assert tables_in(a_name) == tables_in(b_name)

    # Tamper with tenant A's ledger: A's verify names the row, B's is untouched.
    admin = sa.create_engine(PG_ADMIN_URL)
    try:
        with admin.begin() as conn:
            conn.execute(sa.text(f"ALTER TABLE {a_name}.ledger DISABLE TRIGGER USER"))
            conn.execute(sa.text(f"UPDATE {a_name}.ledger SET actor = 'mallory' WHERE seq = 2"))  # noqa: S608
            conn.execute(sa.text(f"ALTER TABLE {a_name}.ledger ENABLE TRIGGER USER"))
    finally:
        admin.dispose()
    with Memwarden(a, quick_check=False) as mw_a, Memwarden(b) as mw_b:
        report = mw_a.verify()
        assert not report.ok and report.first_bad_seq == 2
        assert mw_b.verify().ok
        assert mw_b.integrity_check().status == "clean"
        assert mw_a.integrity_check(full=True).status != "clean"  # an already-scanned row


def test_migrations_per_schema(
    tmp_path: Path, pg_schema_url: str, tenants: tuple[str, str]
) -> None:
    a_name, b_name = tenants
    a = Settings(home=tmp_path / "a", database_url=pg_schema_url, pg_schema=a_name)
    b = Settings(home=tmp_path / "b", database_url=pg_schema_url, pg_schema=b_name)
    for settings in (a, b):
        Memwarden.init(settings).close()
    newest = next(
        r for r in reversed(migrate.revisions()) if r.revision in migrate.head_revisions()
    )
    store = Store(a)
    try:
        migrate.downgrade(store, f"{newest.revision}@-1")
    finally:
        store.dispose()
    cli_a = Cli(a.home, pg_schema_url, MEMWARDEN_PG_SCHEMA=a_name)
    cli_b = Cli(b.home, pg_schema_url, MEMWARDEN_PG_SCHEMA=b_name)
    assert f"not applied: {newest.revision}" in cli_a.run("db", "current", code=1).stdout
    assert "the schema is current" in cli_b.run("db", "current").stdout
    assert "memwarden db upgrade" in cli_a.error("memory", "list")
    cli_b.run("memory", "list")
    cli_a.run("db", "upgrade")
    assert cli_a.json("db", "current")["state"] == "current"


def test_the_schema_as_a_url_parameter(
    tmp_path: Path, pg_schema_url: str, tenants: tuple[str, str]
) -> None:
    a_name, _ = tenants
    url = f"{PG_ADMIN_URL}?schema={a_name}"
    cli = Cli(tmp_path / "home", url)
    info = cli.json("init")
    assert info["pg_schema"] == a_name
    assert Path(info["ledger_key_file"]) == tmp_path / "home" / "schemas" / a_name / "ledger.key"
    assert "schema=" not in info["database_url"] or a_name in info["database_url"]
    cli.run("project", "add", "atlas")
    assert "projects" in tables_in(a_name)
    # The same store through the setting instead of the URL parameter.
    same = Settings(home=tmp_path / "home", database_url=PG_ADMIN_URL, pg_schema=a_name)
    with Memwarden(same) as mw:
        assert [p.name for p in mw.list_projects()] == ["atlas"]
        assert mw.verify().ok


def test_a_bad_schema_name_is_refused(tmp_path: Path) -> None:
    for bad in ("Tenant", "1abc", "pg_catalog", "a;drop", "a" * 64):
        with pytest.raises(ValueError, match="PostgreSQL schema name"):
            Settings(home=tmp_path, pg_schema=bad)
    cli = Cli(tmp_path / "home", PG_ADMIN_URL, MEMWARDEN_PG_SCHEMA="no such")
    assert "invalid setting MEMWARDEN_PG_SCHEMA" in cli.error("init")
    # The URL form is checked when the engine is made.
    cli = Cli(tmp_path / "home", f"{PG_ADMIN_URL}?schema=Bad")
    assert "invalid PostgreSQL schema name 'Bad'" in cli.error("init")
    # The name also becomes a folder: a path in it is refused before anything is written.
    cli = Cli(tmp_path / "home", f"{PG_ADMIN_URL}?schema=../../escape")
    assert "invalid PostgreSQL schema name '../../escape'" in cli.error("init")
    assert not (tmp_path / "escape").exists() and not (tmp_path / "home" / "schemas").exists()
