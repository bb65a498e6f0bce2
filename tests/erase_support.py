"""Where erased text could still sit on disk: the raw files of the database, both engines."""

from __future__ import annotations

import time
from pathlib import Path

import sqlalchemy as sa

from memwarden import Memwarden
from memwarden.db.engine import sqlite_path

_RELATIONS = """
    SELECT c.oid, c.relname, pg_relation_filepath(c.oid) FROM pg_class c
    JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE pg_relation_filepath(c.oid) IS NOT NULL AND c.relkind IN ('r', 'i', 't')
    AND (n.nspname = current_schema() OR c.oid IN (
        SELECT reltoastrelid FROM pg_class k JOIN pg_namespace s ON s.oid = k.relnamespace
        WHERE s.nspname = current_schema()))"""


def disk_hits(mw: Memwarden, *needles: str, files: bool = False) -> list[str]:
    """The database files holding one of ``needles`` (as given, lower or upper case, UTF-8):
    SQLite's file and its WAL; PostgreSQL's table, TOAST and index files of the test's schema.
    PostgreSQL, ``files``: the files themselves after a CHECKPOINT (the data folder is readable
    by root; a checkpoint of the shared server takes seconds); otherwise every page of those
    relations as the server holds it (pageinspect's get_raw_page: what the next checkpoint
    writes to those files)."""
    wanted = {form.encode() for n in needles for form in (n, n.lower(), n.upper())}
    if not mw.store.is_sqlite and not files:
        return _page_hits(mw, wanted)
    if not mw.store.is_sqlite:
        with mw.store.engine.connect() as conn:
            conn = conn.execution_options(isolation_level="AUTOCOMMIT")
            conn.exec_driver_sql("CHECKPOINT")
            data = Path(str(conn.exec_driver_sql("SHOW data_directory").scalar_one()))
            rows = conn.execute(sa.text(_RELATIONS)).all()
        found = {}
        for _, name, relative in rows:
            base = data / relative
            for part in [base, *base.parent.glob(f"{base.name}.*")]:
                found[f"{name}:{part.name}"] = part
        return _file_hits(found, wanted)
    path = sqlite_path(mw.settings.resolved_database_url)
    assert path is not None
    return _file_hits({str(p): p for p in (path, Path(f"{path}-wal")) if p.exists()}, wanted)


def _file_hits(files: dict[str, Path], wanted: set[bytes]) -> list[str]:
    hits = []
    for label, path in files.items():
        content = path.read_bytes()
        if any(w in content for w in wanted):
            hits.append(label)
    return hits


def _page_hits(mw: Memwarden, wanted: set[bytes]) -> list[str]:
    hits = []
    with mw.store.engine.connect() as conn:
        conn = conn.execution_options(isolation_level="AUTOCOMMIT")
        try:
            conn.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS pageinspect SCHEMA public")
        except sa.exc.DBAPIError:
            pass  # another test created it at the same moment
        for oid, name, _ in conn.execute(sa.text(_RELATIONS)).all():
            blocks = int(
                conn.execute(
                    sa.text("SELECT pg_relation_size(CAST(:oid AS oid)) / 8192"), {"oid": oid}
                ).scalar_one()
            )
            for block in range(blocks):
                page = bytes(
                    conn.execute(
                        sa.text(
                            "SELECT public.get_raw_page(CAST(CAST(:oid AS oid) AS regclass)::text, :b)"
                        ),
                        {"oid": oid, "b": block},
                    ).scalar_one()
                )
                if any(w in page for w in wanted):
                    hits.append(f"{name}:block {block}")
    return hits


def scrub_all(mw: Memwarden, timeout: float = 30.0, *, rewrite: bool = False) -> None:
    """Finish every pending scrub, retrying while other sessions of the shared PostgreSQL
    server hold snapshots older than an erase (the receipts rightly stay pending meanwhile).
    ``rewrite``: as ``erase-scrub --rewrite``, whatever the tables' size."""
    deadline = time.monotonic() + timeout
    while mw.finish_scrubs(rewrite_any_size=rewrite):
        assert time.monotonic() < deadline, "erasures still pending after the timeout"
        time.sleep(0.2)
