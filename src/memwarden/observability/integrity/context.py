"""What every check is given (one consistent read of the database) and what it gives back."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, Connection, Select, Table, and_, func, select, text

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
    memory_count: int = 0
    row_snapshot: str | None = None  # PostgreSQL: see ``current_snapshot``
    fulltext_config: str | None = None  # PostgreSQL: set by the full-text check
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

    def rows_since_previous(self, check: str, table: Table) -> ColumnElement[bool] | None:
        """A filter to the rows of ``table`` the previous scan could not see, when ``check``
        may look at those alone; None: look at every row."""
        unseen = self.previous_snapshot(check)
        return None if unseen is None else written_since(table.name, unseen)

    def previous_snapshot(self, check: str) -> Snapshot | None:
        """The previous scan's snapshot when ``check`` may look at the rows written since
        alone; None: look at every row.

        Only an incremental scan on PostgreSQL whose previous run recorded its snapshot and
        ran ``check`` cleanly (a row it reported stays reported until it is fixed, so any
        finding, error or skip means every row again). A row's ``xmin`` is the transaction
        that wrote its current version: any INSERT or UPDATE, memwarden's or a raw one, makes
        a new version, so an edit behind memwarden's back is among these rows. An edit of the
        data files themselves keeps ``xmin``: that is what ``--full`` is for."""
        previous = self.previous
        unseen = self.unseen_snapshot()
        if unseen is None or previous is None:
            return None
        own = next((c for c in previous.checks if c.name == check), None)
        if own is None or own.status != "ok":
            return None
        return unseen

    def unseen_snapshot(self) -> Snapshot | None:
        """The previous scan's snapshot, whatever its checks found, when this scan is
        incremental on PostgreSQL and can compare row versions with it; None otherwise."""
        previous = self.previous
        if self.full or previous is None or previous.row_snapshot is None:
            return None
        if self.row_snapshot is None or self.is_sqlite:
            return None
        before, now = Snapshot.parse(previous.row_snapshot), Snapshot.parse(self.row_snapshot)
        if before is None or now is None or not 0 <= now.xmax - before.xmin < XID_SPAN:
            return None  # ids compare modulo 2^32: too far apart to compare safely
        return before


# A row's transaction id is 32 bits and compares correctly within 2^31 transactions; stay well
# inside that (a store that far behind its last scan checks every row).
XID_SPAN = 2**30


@dataclass(frozen=True)
class Snapshot:
    """A PostgreSQL snapshot as ``pg_current_snapshot()`` prints it: ``xmin:xmax:xip,...``.
    It saw every transaction below ``xmin``; from ``xmin`` on, some were still running."""

    xmin: int
    xmax: int

    @classmethod
    def parse(cls, value: str) -> Snapshot | None:
        parts = value.split(":")
        if len(parts) != 3 or not all(p.isdigit() for p in parts[:2]):
            return None
        return cls(int(parts[0]), int(parts[1]))


def written_since(relation: str, unseen: Snapshot) -> ColumnElement[bool]:
    """``relation``'s rows whose current version a transaction at or after ``unseen``'s
    ``xmin`` wrote: every row it may not have seen. Not only its ``xmax`` and its running
    list: a row written in a savepoint carries the subtransaction's id, which is above its
    running parent's but in no list, and memwarden writes in savepoints. (age() counts back
    from the current transaction, so "no older than xmin"; ids on the row are 32-bit: modulo
    2^32.) A transaction left running for long holds ``xmin`` back: the next scan then checks
    every row written since it began, never fewer than it must."""
    return and_(
        text(f"age({relation}.xmin) <= age(CAST(CAST(:snapshot_xmin AS text) AS xid))").bindparams(
            snapshot_xmin=unseen.xmin % 2**32
        )
    )


def current_snapshot(conn: Connection) -> str | None:
    """This transaction's snapshot on PostgreSQL (None on SQLite, which has no row versions).
    Call it after the transaction's first query, which fixes its snapshot."""
    if conn.dialect.name == "sqlite":
        return None
    return str(conn.exec_driver_sql("SELECT CAST(pg_current_snapshot() AS text)").scalar_one())


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
