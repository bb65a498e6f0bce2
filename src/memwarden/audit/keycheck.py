"""Is the ledger key in use the one the store was made with?

A store opened with another key (a key file mixed up between machines, a database restored
without its key) must not be written: every new row would be tagged with the wrong key and the
chain forked for good. What the store holds says which key it expects: the witness names its
key's fingerprint, and the chain's newest rows verify only under their own key.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Connection, select

from memwarden.audit.chain import ChainKey, header_bytes
from memwarden.audit.witness import WitnessRecord
from memwarden.db import schema
from memwarden.errors import LedgerKeyMismatchError

L = schema.ledger
# Newest rows tried: one edited row must not pass for a wrong key (that is tampering, which
# verify names), while a wrong key fails them all.
ROWS_TRIED = 3


@dataclass(frozen=True)
class KeyCheck:
    key_file: Path
    in_use: str  # fingerprint of the key read from key_file
    expected: str | None  # fingerprint the store names (its witness), when it names one
    matches: bool
    why: str = ""

    def error(self) -> LedgerKeyMismatchError:
        expected = self.expected or "unknown (no witness names it)"
        return LedgerKeyMismatchError(
            f"wrong ledger key: {self.key_file} holds key {self.in_use}, but this store was made "
            f"with key {expected} ({self.why}). Writes and `audit verify` are refused and nothing "
            "has been written: put the store's key back at that path, or point "
            "MEMWARDEN_LEDGER_KEY_FILE at it",
            in_use=self.in_use,
            expected=self.expected,
            key_file=str(self.key_file),
        )


def newest_rows_verify(conn: Connection, key: ChainKey) -> bool | None:
    """Whether any of the chain's newest rows verifies under ``key`` (None: no rows)."""
    rows = conn.execute(
        select(
            L.c.seq,
            L.c.entity_type,
            L.c.entity_id,
            L.c.project,
            L.c.action,
            L.c.actor,
            L.c.ts,
            L.c.payload_digest,
            L.c.prev_tag,
            L.c.tag,
        )  # fmt: skip
        .order_by(L.c.seq.desc())
        .limit(ROWS_TRIED)
    ).all()
    if not rows:
        return None
    return any(hmac.compare_digest(key.tag(header_bytes(*row[:9])), str(row.tag)) for row in rows)


def check_key(
    conn: Connection, key: ChainKey, key_file: Path, witness: WitnessRecord | None
) -> KeyCheck:
    in_use = key.fingerprint()
    named = witness.key_id if witness is not None else None
    chain = newest_rows_verify(conn, key)
    if chain:
        # The chain is the store's own record; a witness naming another key is the witness's
        # problem, and verify reports it.
        return KeyCheck(key_file, in_use, named or in_use, True)
    if named == in_use:
        # The witness knows this key: newest rows that fail were edited, which verify names.
        return KeyCheck(key_file, in_use, named, True)
    if named is not None:
        why = f"its witness names key {named}" + (
            "" if chain is None else " and its newest rows do not verify with this key"
        )
        return KeyCheck(key_file, in_use, named, False, why)
    if chain is None:
        return KeyCheck(key_file, in_use, None, True)
    return KeyCheck(
        key_file, in_use, None, False, "its newest ledger rows do not verify with this key"
    )
