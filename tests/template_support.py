"""A freshly initialised store with project ``atlas``, made once per test process and copied
into each test that asks for the ``mw`` fixture (conftest.py).

``Memwarden.init`` on an empty database runs every migration: on PostgreSQL about 160
statements over a dozen connections, most of a small test's time. The ``mw`` fixture only needs
the state init leaves, so each process makes that state once and every test gets a copy: the
home folder (ledger key, signing key, witness, and the SQLite file) is copied as files, and the
PostgreSQL schema is recreated from ``pg_dump`` of the template schema in one round trip. Init on
an empty database is still run, for real, by the template itself and by the tests that call
``Memwarden.init`` (tests/test_migrations.py and every ``*_migration.py``, test_cli, ...).

A copy is checked against its template once per process (tables, columns, indexes, triggers,
functions, rows per table): a dump that missed something fails the first test loudly. Without
``pg_dump`` on the PATH the PostgreSQL half falls back to ``Memwarden.init`` (slower, same state).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from memwarden import Memwarden, Settings

PROJECT = "atlas"
# The settings fields a template copy stands for: a test's own settings (another key file, a
# witness elsewhere, options that change init) get a real init instead.
PLAIN_FIELDS = frozenset({"home", "database_url"})

_homes: dict[str, Path] = {}  # engine name -> template home
_pg: dict[str, Any] = {}  # "schema", "script", "checked"


def plain(settings: Settings) -> bool:
    """Whether the settings differ from the template's in the home and database URL only."""
    ours = settings.model_dump(exclude=set(PLAIN_FIELDS))
    return ours == Settings(home=settings.home).model_dump(exclude=set(PLAIN_FIELDS))


def _make(settings: Settings) -> None:
    with Memwarden.init(settings) as mw:
        mw.add_project(PROJECT)


def sqlite_home() -> Path:
    if "sqlite" not in _homes:
        home = Path(tempfile.mkdtemp(prefix="mw-template-sqlite-")) / "home"
        _make(Settings(home=home))
        # Closed cleanly: the database is the one file, nothing left in a write-ahead log.
        assert not any(p.name.endswith("-wal") and p.stat().st_size for p in home.iterdir())
        _homes["sqlite"] = home
    return _homes["sqlite"]


def _pg_dump(admin_url: str, schema: str) -> str:
    url = sa.engine.make_url(admin_url)
    env = {**os.environ}
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    command = ["pg_dump", "--schema", schema, "--inserts", "--no-owner", "--no-privileges"]
    command += ["--host", url.host or "127.0.0.1", "--port", str(url.port or 5432)]
    command += ["--username", url.username or "postgres", "--dbname", url.database or "test"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"pg_dump failed: {done.stderr}"
    # psql meta-commands (\restrict) and comments are not SQL; the schema itself exists already.
    lines = [
        line
        for line in done.stdout.splitlines()
        if not line.startswith(("--", "\\")) and line.strip() != f"CREATE SCHEMA {schema};"
    ]
    return "\n".join(lines)


def pg_template(admin_url: str) -> tuple[str, str] | None:
    """(template schema, script that recreates it), or None without pg_dump."""
    if shutil.which("pg_dump") is None:
        return None
    if "schema" not in _pg:
        schema = f"tpl_{uuid.uuid4().hex[:16]}"
        admin = sa.create_engine(admin_url, poolclass=sa.NullPool)
        with admin.begin() as conn:
            conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
        home = Path(tempfile.mkdtemp(prefix="mw-template-pg-")) / "home"
        _make(Settings(home=home, database_url=f"{admin_url}?options=-csearch_path%3D{schema}"))
        _pg["schema"] = schema
        _pg["script"] = _pg_dump(admin_url, schema)
        _homes["postgresql"] = home
    return str(_pg["schema"]), str(_pg["script"])


def _fingerprint(conn: sa.Connection, schema: str) -> list[Any]:
    """What a copy must share with its template, the schema's own name taken out."""
    queries = [
        "SELECT table_name, column_name, data_type, is_nullable, "
        "replace(coalesce(column_default, ''), :s, '') FROM information_schema.columns "
        "WHERE table_schema = :s ORDER BY 1, 2",
        "SELECT indexname, replace(indexdef, :s, '') FROM pg_indexes "
        "WHERE schemaname = :s ORDER BY 1",
        "SELECT c.relname, t.tgname, t.tgenabled FROM pg_trigger t "
        "JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = :s AND NOT t.tgisinternal ORDER BY 1, 2",
        "SELECT c.conname, c.contype, replace(pg_get_constraintdef(c.oid), :s, '') "
        "FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace "
        "WHERE n.nspname = :s ORDER BY 1",
        "SELECT p.proname, p.prosrc FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
        "WHERE n.nspname = :s ORDER BY 1",
        "SELECT cfgname FROM pg_ts_config c JOIN pg_namespace n ON n.oid = c.cfgnamespace "
        "WHERE n.nspname = :s ORDER BY 1",
    ]
    found: list[Any] = [
        [tuple(row) for row in conn.execute(sa.text(q), {"s": schema})] for q in queries
    ]
    # A partial index's ``status IN (...)`` comes back from the dump with its varchar -> text
    # casts placed differently (same predicate): compared without casts and parentheses.
    found[1] = [(name, re.sub(r"::[a-z ]+(\[\])?|[()]", "", text)) for name, text in found[1]]
    tables = [
        row[0]
        for row in conn.execute(
            sa.text(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = :s "
                "AND table_type = 'BASE TABLE' ORDER BY 1"
            ),
            {"s": schema},
        )
    ]
    found.append(
        [
            (
                name,
                conn.execute(
                    sa.select(sa.func.count()).select_from(sa.table(name, schema=schema))
                ).scalar_one(),
            )
            for name in tables
        ]
    )
    return found


def copy_pg(admin_url: str, schema: str) -> bool:
    """Fill the empty ``schema`` with a copy of the template; False without pg_dump."""
    found = pg_template(admin_url)
    if found is None:
        return False
    template, script = found
    admin = sa.create_engine(admin_url, poolclass=sa.NullPool)  # the dump's SETs die with it
    try:
        with admin.begin() as conn:
            conn.exec_driver_sql(script.replace(template, schema))
        if not _pg.get("checked"):
            with admin.connect() as conn:
                assert _fingerprint(conn, schema) == _fingerprint(conn, template), (
                    "a copy of the template schema differs from it: pg_dump missed something"
                )
            _pg["checked"] = True
    finally:
        admin.dispose()
    return True


def copy_home(engine_name: str, home: Path) -> None:
    source = sqlite_home() if engine_name == "sqlite" else _homes["postgresql"]
    shutil.copytree(source, home, dirs_exist_ok=True)


def drop_templates(admin_url: str) -> None:
    for home in _homes.values():
        shutil.rmtree(home.parent, ignore_errors=True)
    _homes.clear()
    if "schema" in _pg:
        admin = sa.create_engine(admin_url, poolclass=sa.NullPool)
        with admin.begin() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{_pg["schema"]}" CASCADE')
        admin.dispose()
        _pg.clear()


def open_copy(engine_name: str, settings: Settings, admin_url: str) -> Memwarden:
    """A memwarden on ``settings`` (an empty SQLite home, or an empty PostgreSQL schema named by
    the URL's search_path) holding a copy of the template; a real init when the settings are
    not the template's or there is no pg_dump."""
    copied = plain(settings)
    if copied and engine_name == "postgresql":
        schema = settings.resolved_database_url.rsplit("search_path%3D", 1)[1]
        copied = copy_pg(admin_url, schema)
    if copied:
        copy_home(engine_name, settings.home)
        return Memwarden(settings)
    made = Memwarden.init(settings)
    try:
        made.add_project(PROJECT)
    except BaseException:
        made.close()
        raise
    return made
