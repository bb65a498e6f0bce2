"""The checkpoint signing key: Ed25519, in a file outside the database, apart from the HMAC key.

The file holds the signer key in Go's ``sumdb/note`` text form (``PRIVATE+KEY+…``), mode 0600.
Its name is the log's origin, ``memwarden.local/<database id>``, so a checkpoint names the
database it speaks for. Anyone holding the verifier key (``init`` prints it) can check a
checkpoint, a proof, a receipt or an evidence bundle without memwarden.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from memwarden.errors import LedgerError
from memwarden.tlog.note import NoteError, Signer, Verifier, sign_receipt

ORIGIN_PREFIX = "memwarden.local/"


class SigningKeyError(LedgerError):
    """The signing key is missing, unreadable or not this database's."""


def origin_for(database_id: str) -> str:
    return f"{ORIGIN_PREFIX}{database_id}"


def load_signer(path: Path, database_id: str) -> Signer:
    if not path.exists():
        raise SigningKeyError(
            f"the checkpoint signing key {path} is missing: run `memwarden init` to make one "
            "(or restore it, or point MEMWARDEN_CHECKPOINT_KEY_FILE at it)"
        )
    try:
        signer = Signer.parse(path.read_text("utf-8"))
    except (NoteError, UnicodeDecodeError) as exc:
        raise SigningKeyError(f"the checkpoint signing key {path} is unreadable: {exc}") from exc
    if signer.name != origin_for(database_id):
        raise SigningKeyError(
            f"the checkpoint signing key {path} belongs to {signer.name}, not to this "
            f"database ({origin_for(database_id)})"
        )
    return signer


def ensure_apart(path: Path, ledger_key: Path) -> None:
    if path.resolve() == ledger_key.resolve():
        raise SigningKeyError(
            "the checkpoint signing key must live apart from the ledger's HMAC key: "
            "MEMWARDEN_CHECKPOINT_KEY_FILE names the same file"
        )


def create_signer(path: Path, database_id: str) -> Signer:
    """Write a new key with owner-only permissions; never overwrite one."""
    signer = Signer.generate(origin_for(database_id))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(signer.text() + "\n")
    return signer


def verifier_of(signer: Signer) -> Verifier:
    return signer.verifier()


def receipt(signer: Signer, body: dict[str, Any]) -> str:
    """A receipt (an erasure's, a bundle's attestation) as a note signed with the log's key."""
    return sign_receipt(signer, body)
