"""One worker of a parallel verify: ``python -m memwarden.audit.verify_worker``.

It reads its job (the database URL, the ledger key, the marks and the rows to walk) pickled
on standard input from the process that started it, walks those rows in one read transaction
and writes one line per batch to standard output: ``progress N`` as it goes, then
``done CHECKED LAST_TAG`` or ``failed CHECKED``. Why a segment failed is not its to say: the
parent walks again from a sound row to name the first failure exactly.
"""

from __future__ import annotations

import importlib
import pickle
import re
import sys
from dataclasses import dataclass
from typing import Any

from sqlalchemy import create_engine
from sqlalchemy.pool import NullPool

from memwarden.audit.chain import ChainKey
from memwarden.audit.diagnose import ChainBroken, Marks
from memwarden.audit.walk import Walk

# What pg_export_snapshot() returns (hex groups and dashes): written into a statement, since
# SET TRANSACTION SNAPSHOT takes no parameter.
_SNAPSHOT_ID = re.compile(r"[0-9A-Fa-f-]{1,64}")


@dataclass(frozen=True)
class Job:
    url: str
    key: ChainKey
    marks: Marks
    first: int
    last: int
    dbapi: str | None = None  # SQLite: the parent's DB-API module (sqlean.dbapi2 or sqlite3)
    snapshot: str | None = None  # PostgreSQL: the parent's exported snapshot, read by every part


def main() -> int:
    job: Job = pickle.load(sys.stdin.buffer)  # from the parent's pipe, never from a file
    out = sys.stdout

    def progress(checked: int) -> None:
        out.write(f"progress {checked}\n")
        out.flush()

    options: dict[str, Any] = {}
    if job.dbapi is not None:
        options["module"] = importlib.import_module(job.dbapi)
    engine = create_engine(job.url, poolclass=NullPool, **options)
    try:
        with engine.connect() as conn, conn.begin():
            if conn.dialect.name == "sqlite":
                # The driver would run each query on its own; one snapshot for the whole part.
                conn.exec_driver_sql("BEGIN")
            elif job.snapshot is not None:
                # The parent's snapshot, which every part reads (the parent holds it open).
                if not _SNAPSHOT_ID.fullmatch(job.snapshot):
                    raise ValueError(f"not a snapshot id: {job.snapshot!r}")
                conn.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                conn.exec_driver_sql(f"SET TRANSACTION SNAPSHOT '{job.snapshot}'")
            walk = Walk(conn, job.key, job.marks)
            try:
                last = walk.run(job.first, progress, until=job.last)
            except ChainBroken:
                out.write(f"failed {walk.checked}\n")
            else:
                out.write(f"done {walk.checked} {last.tag}\n")
    finally:
        engine.dispose()
    out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
