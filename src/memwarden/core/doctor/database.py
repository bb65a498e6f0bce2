"""Doctor checks for the database itself: it opens, and its schema is current."""

from __future__ import annotations

from collections.abc import Iterable

from memwarden.core.doctor import Check, CheckResult, DoctorContext
from memwarden.db import migrate
from memwarden.db.structure import missing_parts


def check_database(ctx: DoctorContext) -> Iterable[CheckResult]:
    if ctx.memwarden is None:
        why = str(ctx.open_error).splitlines()[0] if ctx.open_error else "not opened"
        yield CheckResult("database", "fail", f"the store did not open: {why}")
        return
    store = ctx.memwarden.store
    current = migrate.current_revisions(store)
    expected = migrate.head_revisions()
    data = {"engine": store.dialect, "schema_revisions": sorted(current)}
    if current != expected:
        yield CheckResult(
            "database",
            "fail",
            f"schema at {sorted(current)}, this version expects {sorted(expected)}: "
            "run `memwarden init`",
            data,
        )
        return
    with store.read() as conn:
        missing = missing_parts(conn)
    if missing:
        shown = ", ".join(missing[:10]) + (
            f" and {len(missing) - 10} more" if len(missing) > 10 else ""
        )
        yield CheckResult(
            "database",
            "fail",
            f"schema version current, but the database lacks {shown}: changed outside "
            "memwarden (a table dropped or renamed); put it back, or restore from a backup",
            {**data, "missing": missing},
        )
        return
    yield CheckResult("database", "ok", f"{store.dialect}, schema current", data)


CHECKS: list[Check] = [check_database]
