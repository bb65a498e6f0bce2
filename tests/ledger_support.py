"""Helpers the ledger tests share: an attacker's raw access, fresh databases, ledger rows."""

from __future__ import annotations

import json
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from hashlib import sha256
from pathlib import Path
from typing import Any

import sqlalchemy as sa

import template_support
from conftest import PG_ADMIN_URL, raw_engine, require_postgres
from memwarden import Memwarden, Settings
from memwarden.audit import parallel, verify_worker
from memwarden.audit.chain import header_bytes
from memwarden.audit.marks import Marks
from memwarden.audit.walk import Walk
from memwarden.audit.witness_format import steady_bytes
from memwarden.db import schema

LEDGER_COLUMNS = (
    "seq",
    "entity_type",
    "entity_id",
    "project",
    "action",
    "actor",
    "ts",
    "payload_digest",
    "prev_tag",
    "tag",
)


@contextmanager
def attacker(mw: Memwarden) -> Iterator[sa.Connection]:
    """A raw connection of someone who can write the database but holds neither the key nor
    the witness: their own engine, the append-only triggers dropped first, one transaction."""
    engine = raw_engine(mw.settings)
    try:
        with engine.begin() as conn:
            if engine.dialect.name == "sqlite":
                conn.exec_driver_sql("DROP TRIGGER IF EXISTS ledger_no_update")
                conn.exec_driver_sql("DROP TRIGGER IF EXISTS ledger_no_delete")
            else:
                conn.exec_driver_sql("DROP TRIGGER IF EXISTS ledger_append_only ON ledger")
            yield conn
    finally:
        engine.dispose()


def ledger_rows(mw: Memwarden) -> list[dict[str, Any]]:
    """Every tagged row with its payload, in sequence order."""
    L, P = schema.ledger, schema.ledger_payloads
    with mw.store.read() as conn:
        rows = conn.execute(
            sa.select(L, P.c.body, P.c.erased_at)
            .select_from(L.outerjoin(P, P.c.seq == L.c.seq))
            .order_by(L.c.seq)
        )
        return [dict(row._mapping) for row in rows]


def row_at(mw: Memwarden, seq: int) -> dict[str, Any]:
    return next(row for row in ledger_rows(mw) if row["seq"] == seq)


def head_seq(mw: Memwarden) -> int:
    return mw.anchor().seq


def plain_tag(row: dict[str, Any]) -> str:
    """What an attacker without the key can compute: an unkeyed SHA-256 of the header."""
    return sha256(
        header_bytes(
            row["seq"],
            row["entity_type"],
            row["entity_id"],
            row["project"],
            row["action"],
            row["actor"],
            row["ts"],
            row["payload_digest"],
            row["prev_tag"],
        )
    ).hexdigest()


def plain_digest(body: str) -> str:
    return sha256(body.encode("utf-8")).hexdigest()


def insert_row(conn: sa.Connection, row: dict[str, Any], body: str | None) -> None:
    conn.execute(sa.insert(schema.ledger).values({k: row[k] for k in LEDGER_COLUMNS}))
    conn.execute(
        sa.insert(schema.ledger_payloads).values(seq=row["seq"], body=body, erased_at=None)
    )


def delete_rows(conn: sa.Connection, *seqs: int) -> None:
    conn.execute(sa.delete(schema.ledger_payloads).where(schema.ledger_payloads.c.seq.in_(seqs)))
    conn.execute(sa.delete(schema.ledger).where(schema.ledger.c.seq.in_(seqs)))


def move_rows(conn: sa.Connection, moves: dict[int, int]) -> None:
    """Renumber rows (and their payloads), going through a free range to dodge the keys."""
    offset = 10_000_000
    for table in (schema.ledger, schema.ledger_payloads):
        for old in moves:
            conn.execute(sa.update(table).where(table.c.seq == old).values(seq=old + offset))
        for old, new in moves.items():
            conn.execute(sa.update(table).where(table.c.seq == old + offset).values(seq=new))


def set_fields(conn: sa.Connection, seq: int, **values: Any) -> None:
    conn.execute(sa.update(schema.ledger).where(schema.ledger.c.seq == seq).values(**values))


def fast_witness(mw: Memwarden) -> Memwarden:
    """Every head lands in the witness's trail: the witness is written on every commit."""
    assert mw.ledger.witness is not None
    return mw


def witness_file(mw: Memwarden) -> dict[str, Any]:
    """The witness file's JSON, read as ``Witness.read`` reads it: writers may be replacing
    it (a read can catch the spare mid-rewrite)."""
    data: dict[str, Any] = json.loads(steady_bytes(mw.settings.resolved_witness_file))
    return data


@contextmanager
def fresh_settings(engine_name: str, root: Path | None = None) -> Iterator[Settings]:
    """Settings for a brand-new, empty database (a new SQLite file or a new PostgreSQL
    schema), usable inside a hypothesis example where function fixtures cannot be."""
    with tempfile.TemporaryDirectory(dir=root) as home_dir:
        home = Path(home_dir) / "home"
        if engine_name == "sqlite":
            yield Settings(home=home)
            return
        require_postgres()
        name = f"t_{uuid.uuid4().hex[:16]}"
        admin = sa.create_engine(PG_ADMIN_URL)
        try:
            with admin.begin() as conn:
                conn.exec_driver_sql(f'CREATE SCHEMA "{name}"')
            yield Settings(home=home, database_url=f"{PG_ADMIN_URL}?options=-csearch_path%3D{name}")
        finally:
            with admin.begin() as conn:
                conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
            admin.dispose()


@contextmanager
def fresh_memwarden(engine_name: str, root: Path | None = None) -> Iterator[Memwarden]:
    """A new database with project ``atlas``: a copy of the per-process template
    (tests/template_support.py), as the ``mw`` fixture gives."""
    with fresh_settings(engine_name, root) as settings:
        mw = template_support.open_copy(engine_name, settings, PG_ADMIN_URL)
        try:
            yield mw
        finally:
            mw.close()


def whole_chain_job(mw: Memwarden) -> verify_worker.Job:
    """A verify worker's job for the whole chain (``verify_worker.Job``), to run in this
    process with ``verify_worker.walk_job``, where the walk can be watched."""
    head = head_seq(mw)
    with mw.store.read() as conn:
        walk = Walk(conn, mw.ledger.key, Marks())
        return verify_worker.Job(
            conn.engine.url.render_as_string(hide_password=False),
            mw.ledger.key,
            Marks(),
            1,
            head,
            walk.part_rows(1, head),
            parallel.driver_open(conn),
        )


def in_threads(count: int, work: Callable[[int], None]) -> None:
    """``work(index)`` on ``count`` threads started together; the first error any of them
    raised is raised here, once all have ended."""
    barrier = threading.Barrier(count)
    errors: list[BaseException] = []

    def run(index: int) -> None:
        barrier.wait()
        try:
            work(index)
        except BaseException as exc:  # noqa: BLE001 - re-raised below, in the caller's thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    if errors:
        raise errors[0]
