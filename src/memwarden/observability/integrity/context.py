"""What every check is given (one consistent read of the database) and what it gives back."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Select, func, select

from memwarden.audit.chain import ChainKey
from memwarden.audit.witness import WitnessRecord
from memwarden.db import schema
from memwarden.observability.integrity.findings import Finding, IntegrityRun


@dataclass(frozen=True)
class ChainAccess:
    """What verifying the ledger needs from outside the database."""

    key: ChainKey
    witness: WitnessRecord | None
    database_id: str
    workers: int = 1  # processes a long chain walk may use (``audit.parallel``)
    # Reads the witness again after the walk (a writer swaps its head in right after its
    # commit: rows committed before the scan's snapshot must not count as a lag).
    reread: Callable[[], WitnessRecord | None] | None = None


@dataclass
class ScanContext:
    """One scan's view: a single read transaction (a snapshot on both engines), whether the
    scan is full, and the previous run an incremental scan continues from."""

    conn: Connection
    full: bool
    previous: IntegrityRun | None
    chain: ChainAccess
    amcheck_create: bool = False
    ledger_head_seq: int = 0
    memory_high_id: int = 0
    _counts: dict[str, int] = field(default_factory=dict)

    @property
    def is_sqlite(self) -> bool:
        return self.conn.dialect.name == "sqlite"

    def count(self, table_name: str) -> int:
        """Rows in a table, counted once per scan."""
        if table_name not in self._counts:
            table = schema.metadata.tables[table_name]
            self._counts[table_name] = int(
                self.conn.execute(select(func.count()).select_from(table)).scalar_one()
            )
        return self._counts[table_name]


@dataclass
class CheckOutcome:
    findings: list[Finding] = field(default_factory=list)
    scanned: int = 0
    skipped: str | None = None  # a check that could not apply here, and why
    # Set by the ledger check: how far the chain is now known sound.
    verified_seq: int | None = None
    verified_tag: str | None = None
    recheck_ids: list[int] = field(default_factory=list)


Check = Callable[[ScanContext], CheckOutcome]


@dataclass(frozen=True)
class CheckSpec:
    name: str
    run: Check


def driver_rows(
    conn: Connection, query: Select[Any], *, stream: bool = False, batch: int = 5000
) -> Iterator[tuple[Any, ...]]:
    """The query's rows as the driver's plain tuples, on the caller's transaction: the scans
    that read every memory or every ledger row spend microseconds per row, and building
    SQLAlchemy rows would take most of them. ``stream``: through a server-side cursor on
    PostgreSQL (memory stays flat however many rows there are). Values come back as the driver
    gives them (SQLite: times as text)."""
    compiled = query.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
    params = compiled.construct_params()
    args: Any = (
        tuple(params[name] for name in compiled.positiontup or ())
        if compiled.positional
        else params
    )
    driver: Any = conn.connection.dbapi_connection
    named = stream and conn.dialect.name == "postgresql"
    cursor = driver.cursor(name="memwarden_integrity") if named else driver.cursor()
    try:
        cursor.execute(str(compiled), args)
        while rows := cursor.fetchmany(batch):
            yield from rows
    finally:
        cursor.close()
