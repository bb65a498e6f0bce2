"""Fixtures: every storage and domain test runs on SQLite (a real file) and on PostgreSQL.

PostgreSQL tests each get a schema of their own in database ``test`` so xdist workers never
collide. Without a reachable server the PostgreSQL half skips loudly, and fails under CI=true.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

import template_support
from memwarden import Memwarden, Settings
from memwarden.db.driver import sqlite_driver
from memwarden.db.engine import pg_url

PG_ADMIN_URL = os.environ.get(
    "MEMWARDEN_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}

# The embedder is on by default (`make run`); the suite runs full-text recall unless a test
# asks for the local model (tests/recall_support.py), so `make test` stays light. Subprocesses
# (CLI tests) inherit this.
os.environ.setdefault("MEMWARDEN_EMBEDDER", "none")
# Likewise the alert-state mirror (on by default: the last alert of each severity written to
# project state, an audited mutation on the alert writer's thread) is off: tests that count
# ledger rows or tree sizes would otherwise see rows appear whenever an alert is stored. The
# mirror's own tests turn it on (tests/test_alerts_surfaces.py).
os.environ.setdefault("MEMWARDEN_ALERT_STATE_PROJECT", "")

_pg_state: dict[str, str | None] = {}


def raw_engine(settings: Settings) -> sa.Engine:
    """A plain engine on the store's database, bypassing memwarden (to inspect or tamper).

    On SQLite it runs on memwarden's own SQLite library (db/driver.py), never Python's
    ``sqlite3``: two SQLite libraries in one process on one file break each other's POSIX
    locks ("disk I/O error", "database disk image is malformed"), and an older library cannot
    write the newer one's FTS5 index. No memwarden connection settings are applied (no
    ``BEGIN IMMEDIATE``, foreign keys at the library's default), so a test can do as an
    outsider would."""
    url = settings.resolved_database_url
    if sa.engine.make_url(url).get_backend_name() == "sqlite":
        return sa.create_engine(url, module=sqlite_driver(settings.sqlite_driver).module)
    return sa.create_engine(pg_url(url, settings.resolved_pg_schema))


def raw_sqlite_connect(path: Path | str) -> Any:
    """A DB-API connection to a SQLite file on memwarden's own SQLite library (see raw_engine)."""
    return sqlite_driver().module.connect(str(path))


def postgres_unavailable() -> str | None:
    """Why PostgreSQL cannot be used, or None when it can. Probed once per worker."""
    if "reason" not in _pg_state:
        try:
            engine = sa.create_engine(PG_ADMIN_URL, connect_args={"connect_timeout": 3})
            with engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
            engine.dispose()
            _pg_state["reason"] = None
        except Exception as exc:  # noqa: BLE001 - any failure means "no PostgreSQL here"
            _pg_state["reason"] = f"PostgreSQL at {PG_ADMIN_URL} is unreachable: {exc}"
    return _pg_state["reason"]


def require_postgres() -> None:
    reason = postgres_unavailable()
    if reason is None:
        return
    if IN_CI:
        pytest.fail(f"CI=true and {reason}", pytrace=False)
    pytest.skip(f"SKIPPING POSTGRESQL HALF — {reason}")


@pytest.fixture
def pg_schema_url() -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a fresh schema, dropped afterwards."""
    require_postgres()
    schema = f"t_{uuid.uuid4().hex[:16]}"
    admin = sa.create_engine(PG_ADMIN_URL)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{PG_ADMIN_URL}?options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def engine_name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def settings(engine_name: str, tmp_path: Path, request: pytest.FixtureRequest) -> Settings:
    """Settings for a fresh, empty database on the engine under test."""
    home = tmp_path / "home"
    if engine_name == "sqlite":
        return Settings(home=home)
    url = request.getfixturevalue("pg_schema_url")
    return Settings(home=home, database_url=url)


@pytest.fixture(scope="session", autouse=True)
def _templates() -> Iterator[None]:
    """The per-process template stores (tests/template_support.py), removed at the end."""
    yield
    template_support.drop_templates(PG_ADMIN_URL)


@pytest.fixture
def mw(settings: Settings, engine_name: str) -> Iterator[Memwarden]:
    """An initialised memwarden with one project, ``atlas``: a copy of one made by
    ``Memwarden.init`` once per process (tests/template_support.py says why)."""
    instance = template_support.open_copy(engine_name, settings, PG_ADMIN_URL)
    try:
        yield instance
    finally:
        instance.close()


@pytest.fixture(autouse=True)
def _no_fault_outlives_its_test() -> Iterator[None]:
    """The fault register is per process: a fault one test raised (a tampered row, a full
    disk) must not show in the next test's /health or doctor on the same worker. Every test
    starts and ends with an empty register."""
    from memwarden.observability.faults import faults

    faults.reset()
    yield
    faults.reset()


@pytest.fixture(autouse=True)
def _no_alerts_outlive_their_test() -> Iterator[None]:
    """``emit_alert`` goes to the alerts of the memwarden opened last in the process: one a test
    left open would take the next test's alerts on the same worker (a test that checks where
    an alert lands, with no memwarden open, then finds it in another test's files)."""
    from memwarden.observability.alerts import default

    before = list(default._installed)
    yield
    left = [alerts for alerts in default._installed if alerts not in before]
    for alerts in left:
        default.uninstall(alerts)
    assert not left, f"{len(left)} memwarden(s) left open by this test (their alerts installed)"
