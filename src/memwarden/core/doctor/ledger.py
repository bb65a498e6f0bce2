"""Doctor checks for the ledger's setup: its key, its witness, and where both are kept.

The key and the witness protect the database only from someone (or some restore) that cannot
reach them too: a witness restored with the database from the same backup vouches for the
older copy. So beyond "present and matching", the doctor warns when either sits in the same
folder as the database.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from memwarden.audit import records
from memwarden.audit.chain import ChainKey
from memwarden.audit.witness import Witness
from memwarden.config import Settings
from memwarden.core.doctor import Check, CheckResult, DoctorContext
from memwarden.db.engine import sqlite_path
from memwarden.errors import LedgerError


def check_ledger_key(ctx: DoctorContext) -> Iterable[CheckResult]:
    path = ctx.settings.resolved_ledger_key_file
    data: dict[str, object] = {"key_file": str(path)}
    try:
        key = ChainKey.load(path)
    except LedgerError as exc:
        yield CheckResult("ledger key", "fail", str(exc), data)
        return
    data["fingerprint"] = key.fingerprint()
    if ctx.memwarden is None:
        unchecked = ctx.need_store("ledger key")
        assert unchecked is not None
        yield CheckResult(
            "ledger key",
            "fail",
            f"key {key.fingerprint()} ({path}); {unchecked.detail}",
            data,
        )
        return
    checked = ctx.memwarden.ledger.key_check
    if checked is not None and not checked.matches:
        data["store_fingerprint"] = checked.expected
        yield CheckResult("ledger key", "fail", str(checked.error()), data)
        return
    data["store_fingerprint"] = checked.expected if checked is not None else None
    yield CheckResult(
        "ledger key", "ok", f"key {key.fingerprint()} ({path}) matches the store", data
    )


def check_witness(ctx: DoctorContext) -> Iterable[CheckResult]:
    path = ctx.settings.resolved_witness_file
    data: dict[str, object] = {"witness_file": str(path)}
    unchecked = ctx.need_store("witness")
    if unchecked is not None:
        yield unchecked
        return
    mw = ctx.memwarden
    assert mw is not None and mw.ledger.witness is not None
    witness = mw.ledger.witness
    try:
        record = witness.read()
    except LedgerError as exc:
        yield CheckResult("witness", "fail", str(exc), data)
        return
    data["witness_seq"] = record.head.seq
    with mw.store.read() as conn:
        head = records.head(conn)
    chain_seq = head[0] if head is not None else 0
    data["chain_seq"] = chain_seq
    if record.database_id != mw.database_id:
        yield CheckResult("witness", "fail", f"{path} belongs to another database", data)
        return
    problem = _unwritable(witness)
    if problem is not None:
        yield CheckResult(
            "witness",
            "fail",
            f"{path} cannot be written ({problem}): "
            + (
                "strict mode refuses every mutation"
                if ctx.settings.ledger_strict
                else "mutations commit unwitnessed, so a cut or rollback of them goes unnoticed"
            ),
            data,
        )
        return
    if record.head.seq < chain_seq:
        yield CheckResult(
            "witness",
            "fail",
            f"{path} lags the chain: it saw row {record.head.seq}, the chain ends at row "
            f"{chain_seq}; run `memwarden audit verify`",
            data,
        )
        return
    if record.head.seq > chain_seq:
        yield CheckResult(
            "witness",
            "fail",
            f"{path} saw row {record.head.seq} but the chain ends at row {chain_seq}: "
            "truncated tail or a database put back from an older copy; run `memwarden audit "
            "verify`",
            data,
        )
        return
    yield CheckResult(
        "witness", "ok", f"{path} present, writable, at the chain's head (row {chain_seq})", data
    )


def _unwritable(witness: Witness) -> str | None:
    """Why the witness's folder cannot take its next write, or None. Writes a probe of the
    witness's size beside it (a full disk refuses the bytes, not the name) and removes it."""
    probe = witness.path.with_name(f"{witness.path.name}.doctor.{os.getpid()}.tmp")
    size = max(witness.path.stat().st_size, 1) if witness.path.exists() else 1
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        return exc.strerror or str(exc)
    try:
        try:
            if os.write(fd, b" " * size) != size:
                return "no space left on device"
        finally:
            os.close(fd)
    except OSError as exc:
        return exc.strerror or str(exc)
    finally:
        probe.unlink(missing_ok=True)
    return None


def database_folder(settings: Settings) -> Path | None:
    """The folder holding the database file (SQLite), or None for a database on a server."""
    path = sqlite_path(settings.resolved_database_url)
    return None if path is None else path.resolve().parent


def check_locations(ctx: DoctorContext) -> Iterable[CheckResult]:
    folder = database_folder(ctx.settings)
    if folder is None:
        yield CheckResult(
            "ledger locations", "ok", "the database is on a server, apart from the key and witness"
        )
        return
    beside = [
        f"the {what} ({path})"
        for what, path in (
            ("ledger key", ctx.settings.resolved_ledger_key_file),
            ("witness", ctx.settings.resolved_witness_file),
        )
        if path.resolve().parent == folder
    ]
    if beside:
        yield CheckResult(
            "ledger locations",
            "warn",
            f"{' and '.join(beside)} sit{'s' if len(beside) == 1 else ''} in the database's "
            f"folder {folder}: a backup of that folder restored later brings an older witness "
            "along and the rollback goes unnoticed. Keep the witness elsewhere "
            "(`memwarden init --witness-file PATH` or MEMWARDEN_WITNESS_FILE) and the key out "
            "of the database's backups",
            {"database_folder": str(folder)},
        )
        return
    yield CheckResult(
        "ledger locations",
        "ok",
        "the ledger key and the witness are kept apart from the database's folder",
        {"database_folder": str(folder)},
    )


CHECKS: list[Check] = [check_ledger_key, check_witness, check_locations]
