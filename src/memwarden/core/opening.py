"""Creating and opening a memwarden database: schema, ledger key, witness, first checks."""

from __future__ import annotations

import uuid
from functools import partial
from typing import Any

import structlog
from sqlalchemy import insert, select

from memwarden.audit import records, verify
from memwarden.audit.chain import GENESIS_TAG, ChainKey
from memwarden.audit.ledger import Ledger, LedgerEntry
from memwarden.audit.signing import SigningKeyError, create_signer, ensure_apart, load_signer
from memwarden.audit.witness import Head, Witness
from memwarden.config import Settings
from memwarden.db import migrate, schema
from memwarden.db.store import Store
from memwarden.errors import LedgerError
from memwarden.observability.alerts import emit_alert

log = structlog.get_logger(__name__)

QUICK_CHECK_ROWS = 256


def initialise(settings: Settings) -> None:
    """Create or upgrade the schema, and the key and witness of a new ledger. Idempotent."""
    store = Store(settings)
    try:
        migrate.upgrade(store)
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
        if not witness.path.exists() and head is None:
            witness.reset(Head(0, GENESIS_TAG))
        elif witness.path.exists() and head is None and witness.read().database_id != database_id:
            witness.reset(Head(0, GENESIS_TAG))
    finally:
        store.dispose()


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
    """``require_witness=False`` only for recovery (verify against an anchor, reset-witness)."""
    database_id = store.meta_value("database_id")
    if database_id is None:
        raise LedgerError("the database has no identity: run `memwarden init`")
    key = ChainKey.load(settings.resolved_ledger_key_file)
    witness = Witness(settings.resolved_witness_file, database_id, key.fingerprint())
    if require_witness or witness.path.exists():
        witness.read()  # a missing witness is a clear error, never a silent pass
    ledger = Ledger(key, witness, strict=settings.ledger_strict)
    ledger.failure_hooks.append(partial(_alert_write_failure, settings.ledger_strict))
    ledger.integrity_hooks.append(_alert_integrity)
    return ledger, database_id


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
    emit_alert("critical", title, message, context)


def quick_check(store: Store, ledger: Ledger, database_id: str) -> verify.VerifyReport:
    """Verify the newest rows and the witness; shout if they fail, but keep serving."""
    assert ledger.witness is not None
    with store.read() as conn:
        head = records.head(conn)
        start = max(1, (head[0] if head else 0) - QUICK_CHECK_ROWS + 1)
        report = verify.verify(
            conn,
            ledger.key,
            witness=ledger.witness.read(),
            database_id=database_id,
            from_seq=start,
        )
    if not report.ok:
        log.critical(
            "ledger_quick_check_failed", first_bad_seq=report.first_bad_seq, reason=report.reason
        )
        emit_alert(
            "critical",
            "Ledger check failed on open",
            f"{report.reason}. Run `memwarden audit verify` for the full picture.",
            {"first_bad_seq": report.first_bad_seq},
        )
    return report
