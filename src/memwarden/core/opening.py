"""Creating and opening a memwarden database: schema, ledger key, witness, first checks."""

from __future__ import annotations

import uuid
from functools import partial
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy import insert, select

from memwarden.audit import records, verify
from memwarden.audit.chain import GENESIS_TAG, ChainKey
from memwarden.audit.entries import LedgerEntry
from memwarden.audit.keycheck import KeyCheck, check_key
from memwarden.audit.ledger import Ledger
from memwarden.audit.signing import SigningKeyError, create_signer, ensure_apart, load_signer
from memwarden.audit.witness import Head, Witness, WitnessRecord
from memwarden.config import WITNESS_POINTER, Settings
from memwarden.db import migrate, schema
from memwarden.db.store import Store
from memwarden.errors import LedgerError
from memwarden.observability.alerts import emit_alert
from memwarden.observability.faults import active_faults, clear_fault, raise_fault

log = structlog.get_logger(__name__)

QUICK_CHECK_ROWS = 256
KEY_FAULT = "ledger_key_mismatch"
WITNESS_FAULT = "ledger_witness_unwritable"
LAG_FAULT = "ledger_witness_lagging"
# The chain does not hold the head its witness saw (a write found it): until a write sees it
# does again (the witness reset, the database put back).
DISAGREE_FAULT = "ledger_witness_disagrees"
# The newest rows or the witness failed the check on open or the dashboard's: until it passes.
CHECK_FAULT = "ledger_check_failed"


def initialise(settings: Settings) -> migrate.Change:
    """Create or upgrade the schema, and the key and witness of a new ledger. Idempotent.

    Returns the schema revisions before and after (equal when there was nothing to do)."""
    store = Store(settings)
    try:
        change = migrate.upgrade(store)
        if change.changed and change.before:
            log.info("schema_upgraded", before=sorted(change.before), after=sorted(change.after))
        with store.write() as unit:
            found = unit.conn.execute(
                select(schema.meta.c.value).where(schema.meta.c.key == "database_id")
            ).scalar_one_or_none()
            if found is None:
                unit.conn.execute(
                    insert(schema.meta).values(key="database_id", value=uuid.uuid4().hex)
                )
        database_id = store.meta_value("database_id")
        assert database_id is not None
        with store.read() as conn:
            head = records.head(conn)
        key_path = settings.resolved_ledger_key_file
        if key_path.exists():
            key = ChainKey.load(key_path)
        elif head is None:
            key = ChainKey.create(key_path)
        else:
            ChainKey.load(key_path)  # raises the clear "key missing" error
            raise AssertionError("unreachable")
        _signing_key(settings, database_id, empty=head is None)
        witness = Witness(settings.resolved_witness_file, database_id, key.fingerprint())
        try:
            if not witness.path.exists() and head is None:
                witness.reset(Head(0, GENESIS_TAG))
            elif (
                witness.path.exists() and head is None and witness.read().database_id != database_id
            ):
                witness.reset(Head(0, GENESIS_TAG))
        finally:
            witness.close()
    finally:
        store.close()
    return change


def record_witness_location(settings: Settings, path: Path) -> None:
    """Remember a witness kept apart from the data folder, for commands run without
    MEMWARDEN_WITNESS_FILE. The witness must already be there (``initialise`` made it, or an
    operator moved it there)."""
    if not path.exists():
        raise LedgerError(
            f"no ledger witness at {path}: move the existing witness there first "
            f"(it is {settings.home / 'ledger.head'} by default), then run init again"
        )
    pointer = settings.data_home / WITNESS_POINTER
    pointer.parent.mkdir(parents=True, exist_ok=True)
    pointer.write_text(f"{path}\n", "utf-8")


def _signing_key(settings: Settings, database_id: str, *, empty: bool) -> None:
    """Make the checkpoint signing key if there is none. Another database's key is a clear
    error, unless this ledger is empty (a new database in an old home, as for the witness):
    then that key is kept aside, renamed, and a new one made."""
    path = settings.resolved_checkpoint_key_file
    ensure_apart(path, settings.resolved_ledger_key_file)
    if path.exists():
        try:
            load_signer(path, database_id)
            return
        except SigningKeyError:
            if not empty:
                raise
        kept = path.with_name(f"{path.name}.replaced-{uuid.uuid4().hex[:8]}")
        path.rename(kept)
        log.warning("checkpoint_key_replaced", kept=str(kept), reason="a new, empty database")
    create_signer(path, database_id)


def open_ledger(
    settings: Settings, store: Store, *, require_witness: bool = True
) -> tuple[Ledger, str]:
    """``require_witness=False`` only for recovery (verify against an anchor, reset-witness).

    A key that is not the store's does not stop the opening (reads that do not depend on it
    keep working) but sets ``Ledger.refusal``: every write and every verify is refused."""
    database_id = store.meta_value("database_id")
    if database_id is None:
        raise LedgerError("the database has no identity: run `memwarden init`")
    key_file = settings.resolved_ledger_key_file
    key = ChainKey.load(key_file)
    witness = Witness(settings.resolved_witness_file, database_id, key.fingerprint())
    record: WitnessRecord | None = None
    if require_witness or witness.path.exists():
        record = witness.read()  # a missing witness is a clear error, never a silent pass
    witness.sweep()  # temporary files of processes killed between commit and witness
    ledger = Ledger(key, witness, strict=settings.ledger_strict)
    ledger.failure_hooks.append(partial(_alert_write_failure, settings.ledger_strict))
    ledger.integrity_hooks.append(_alert_integrity)
    ledger.agreement_hooks.append(partial(clear_fault, DISAGREE_FAULT))
    witness.fault_hooks.append(partial(_witness_unwritable, settings.ledger_strict))
    witness.recovery_hooks.append(_witness_writable)
    with store.read() as conn:
        checked = check_key(conn, key, key_file, record)
    ledger.key_check = checked
    if not checked.matches:
        ledger.refusal = checked.error()
        _alert_wrong_key(checked)
    return ledger, database_id


def _alert_wrong_key(checked: KeyCheck) -> None:
    log.critical(
        "ledger_key_mismatch",
        key_file=str(checked.key_file),
        in_use=checked.in_use,
        expected=checked.expected,
    )
    raise_fault(
        KEY_FAULT,
        "Wrong ledger key",
        str(checked.error()),
        {"key_file": str(checked.key_file), "in_use": checked.in_use, "expected": checked.expected},
    )


def _witness_unwritable(strict: bool, path: Path, exc: OSError, head: Head) -> None:
    """The critical alert (once per episode) for a witness that cannot be written."""
    raise_fault(
        WITNESS_FAULT,
        "Ledger witness cannot be written",
        f"the witness {path} could not be advanced to row {head.seq} ({exc.strerror or exc}): "
        + (
            "strict mode refuses mutations until it can"
            if strict
            else "mutations still commit, but until it is written again a cut of the newest "
            "rows, or a rollback of the database, can go unnoticed"
        )
        + ". Free space or make its folder writable; `memwarden audit verify` shows the lag.",
        {"path": str(path), "seq": head.seq, "error": exc.strerror or str(exc)},
    )


def _witness_writable(path: Path) -> None:
    clear_fault(WITNESS_FAULT)
    clear_fault(LAG_FAULT)


def _alert_write_failure(strict: bool, exc: Exception, entries: list[LedgerEntry]) -> None:
    """The critical alert for a mutation the ledger could not record."""
    first = entries[0] if entries else None
    emit_alert(
        "critical",
        "Ledger write failed",
        f"{len(entries)} ledger entr{'y' if len(entries) == 1 else 'ies'} not recorded "
        f"({type(exc).__name__}); the mutation "
        + ("was refused (strict mode)" if strict else "committed without its audit row")
        + ". The integrity scan reports the gap.",
        {
            "error_type": type(exc).__name__,
            "entity": f"{first.entity_type} {first.entity_id}" if first else None,
            "action": first.action if first else None,
            "actor": first.actor if first else None,
        },
    )


def _alert_integrity(title: str, message: str, context: dict[str, Any]) -> None:
    """A fault, not a one-off alert: ``/health`` is degraded and ``doctor`` shows it until a
    write sees the chain and its witness agree again."""
    raise_fault(DISAGREE_FAULT, title, message, context)


def quick_check(store: Store, ledger: Ledger, database_id: str) -> verify.VerifyReport | None:
    """Verify the newest rows and the witness; shout if they fail, but keep serving.
    Nothing to check (None) when the key is not the store's: that is refused already."""
    assert ledger.witness is not None
    if ledger.refusal is not None:
        return None
    report = check_newest_rows(store, ledger, database_id, QUICK_CHECK_ROWS, "on open")
    if report.lag is not None:
        # The witness is behind the chain: a writer could not write it (or was killed between
        # its commit and the witness). A fault until a write catches the witness up.
        raise_fault(LAG_FAULT, "Ledger witness lags the chain", str(report.reason), report.lag)
        ledger.witness.note_lag(Head(int(report.lag["from_seq"]), ""))
    return report


def check_newest_rows(
    store: Store, ledger: Ledger, database_id: str, rows: int, when: str
) -> verify.VerifyReport:
    """Verify the newest ``rows`` ledger rows and the witness (on open, or the dashboard's
    status), and keep the ``ledger_check_failed`` fault up to date (``note_ledger_check``)."""
    witness = ledger.witness
    assert witness is not None
    # The witness before the chain: a write committing in between then reads as a lag (which
    # the check reads the witness again for), never as a chain behind its witness.
    seen = witness.read()
    with store.read() as conn:
        head = records.head(conn)
        start = max(1, (head[0] if head else 0) - rows + 1)
        report = verify.verify(
            conn,
            ledger.key,
            witness=seen,
            database_id=database_id,
            from_seq=start,
            reread=witness.peek,
        )
    note_ledger_check(report, when, start)
    return report


def note_ledger_check(report: verify.VerifyReport, when: str, from_seq: int) -> None:
    """The outcome of a check of the newest rows from ``from_seq`` and the witness (on open,
    or the dashboard's): a failure is a fault until a check that covers its row passes (the
    newest rows move on: one that no longer reaches it proves nothing). A lagging witness has
    its own fault."""
    if report.lag is not None:
        return
    failed = next((f for f in active_faults() if f.key == CHECK_FAULT), None)
    bad_seq = failed.context.get("first_bad_seq") if failed is not None else None
    if report.ok:
        if not isinstance(bad_seq, int) or from_seq <= bad_seq:
            clear_fault(CHECK_FAULT)
        return
    if failed is not None and isinstance(bad_seq, int) and (report.first_bad_seq or 0) > 0:
        # The episode's lowest failing row: a pass must reach back to it to end the episode.
        failed.context["first_bad_seq"] = min(bad_seq, int(report.first_bad_seq or bad_seq))
    log.critical(
        "ledger_quick_check_failed",
        first_bad_seq=report.first_bad_seq,
        reason=report.reason,
        when=when,
    )
    raise_fault(
        CHECK_FAULT,
        "Ledger check failed",
        f"the check of the newest ledger rows and the witness {when} failed: {report.reason}. "
        "Run `memwarden audit verify` for the full picture.",
        {"first_bad_seq": report.first_bad_seq},
    )
