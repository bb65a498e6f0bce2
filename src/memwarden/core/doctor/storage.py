"""Doctor checks for storage: which SQLite runs, the full-text indexes, private files,
erasures still pending."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select

from memwarden.core.doctor import Check, CheckResult, DoctorContext
from memwarden.db import schema
from memwarden.db.driver import SQLITE_FLOOR, sqlite_driver
from memwarden.db.engine import sqlite_path
from memwarden.errors import StorageError
from memwarden.observability.integrity import fulltext
from memwarden.private_files import DIR_MODE, FILE_MODE, wider_than

# An erasure still pending after this long: readers that never finish, or a PostgreSQL table
# too big to rewrite in the background.
PENDING_TOO_LONG = timedelta(hours=1)


def check_sqlite_library(ctx: DoctorContext) -> Iterable[CheckResult]:
    url = ctx.settings.resolved_database_url
    if sqlite_path(url) is None and not url.startswith("sqlite"):
        if ctx.memwarden is not None:
            with ctx.memwarden.store.read() as conn:
                version = conn.exec_driver_sql("SHOW server_version").scalar_one()
            yield CheckResult("database_engine", "ok", f"PostgreSQL {version}")
        return
    try:
        driver = sqlite_driver(ctx.settings.sqlite_driver)
    except StorageError as exc:
        yield CheckResult("sqlite_library", "fail", str(exc))
        return
    floor = ".".join(map(str, SQLITE_FLOOR))
    yield CheckResult(
        "sqlite_library",
        "ok",
        f"{driver.describe()}, at or above the tested floor {floor}",
        {"driver": driver.name, "sqlite_version": driver.version_text},
    )


def check_fulltext_index(ctx: DoctorContext) -> Iterable[CheckResult]:
    missing = ctx.need_store("fulltext_index")
    if missing is not None:
        yield missing
        return
    assert ctx.memwarden is not None
    try:
        with ctx.memwarden.store.connect() as conn:
            broken = fulltext.broken_indexes(conn)
    except fulltext.IndexCheckBusy as exc:
        yield CheckResult(
            "fulltext_index",
            "warn",
            f"not checked: another writer held the database past the busy timeout ({exc}); "
            "run `memwarden doctor` again",
        )
        return
    if broken:
        detail = "; ".join(f"{index.table}: {why}" for index, why in broken)
        yield CheckResult(
            "fulltext_index",
            "fail",
            f"{detail} (`memwarden integrity check --fix` rebuilds it)",
        )
        return
    yield CheckResult("fulltext_index", "ok", "the full-text indexes match their rows")


def _private_paths(ctx: DoctorContext) -> list[tuple[Path, int]]:
    settings = ctx.settings
    paths: list[tuple[Path, int]] = [(settings.home, DIR_MODE)]
    database = sqlite_path(settings.resolved_database_url)
    if database is not None:
        paths += [
            (database, FILE_MODE),
            (Path(f"{database}-wal"), FILE_MODE),
            (Path(f"{database}-shm"), FILE_MODE),
        ]
    paths += [
        (settings.resolved_ledger_key_file, FILE_MODE),
        (settings.resolved_witness_file, FILE_MODE),
        (settings.resolved_alert_log, FILE_MODE),
        (settings.data_home / "dashboard.key", FILE_MODE),
        (settings.resolved_checkpoint_key_file, FILE_MODE),
    ]
    return paths


def check_file_permissions(ctx: DoctorContext) -> Iterable[CheckResult]:
    wide = []
    for path, allowed in _private_paths(ctx):
        mode = wider_than(path, allowed)
        if mode is not None:
            wide.append(f"{path} is {oct(mode)[2:]} (want {oct(allowed)[2:]})")
    if wide:
        yield CheckResult(
            "file_permissions",
            "warn",
            "readable by other users: " + "; ".join(wide) + " (chmod them)",
            {"wide": wide},
        )
        return
    yield CheckResult("file_permissions", "ok", "memwarden's files are private to their owner")


def check_pending_erasures(ctx: DoctorContext) -> Iterable[CheckResult]:
    missing = ctx.need_store("erasures")
    if missing is not None:
        yield missing
        return
    assert ctx.memwarden is not None
    table = schema.erasures
    with ctx.memwarden.store.read() as conn:
        count, oldest = conn.execute(
            select(func.count(), func.min(table.c.requested_at)).where(table.c.status == "pending")
        ).one()
    if not count:
        yield CheckResult("erasures", "ok", "every erasure is scrubbed from disk")
        return
    moment = oldest if oldest is None or oldest.tzinfo else oldest.replace(tzinfo=UTC)
    stuck = moment is not None and datetime.now(UTC) - moment > PENDING_TOO_LONG
    yield CheckResult(
        "erasures",
        "warn" if stuck else "ok",
        f"{count} erasures still pending (an old copy waits in the WAL or dead rows); "
        "`memwarden memory erase-scrub` finishes them",
        {"pending": int(count)},
    )


CHECKS: list[Check] = [
    check_sqlite_library,
    check_fulltext_index,
    check_file_permissions,
    check_pending_erasures,
]
