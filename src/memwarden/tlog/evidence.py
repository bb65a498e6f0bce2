"""The documents memwarden hands to a third party, and how to check them offline.

Standalone: this package only. Three kinds, each JSON with a ``format``:

- ``memwarden-inclusion/v1``: one ledger row, its inclusion proof and the signed checkpoint
  whose tree holds it;
- ``memwarden-consistency/v1``: two signed checkpoints and the proof that the newer tree
  extends the older one (nothing before the older size was rewritten or removed);
- ``memwarden-evidence/v1``: a memory's ledger rows with their payloads (or erasure markers),
  an inclusion proof for each, the checkpoint they chain to, and an attestation signed with
  the same key over the whole bundle.

A leaf is the canonical JSON (sorted keys, no whitespace, UTF-8) of a ledger row's tagged
fields and its tag: never its payload, so an erasure leaves every proof valid. The payload
is bound to the row by a keyed digest only memwarden's HMAC key can check; a third party
relies on the attestation for that binding.
"""

from __future__ import annotations

import json
from hashlib import sha256
from typing import Any

from .merkle import ProofError, leaf_hash, verify_consistency, verify_inclusion
from .note import Checkpoint, NoteError, Verifier, canonical_json, open_checkpoint, open_receipt

LEAF_FIELDS = (
    "action", "actor", "digest", "entity_id", "entity_type", "prev", "project", "seq", "tag", "ts",
)  # fmt: skip
INCLUSION = "memwarden-inclusion/v1"
CONSISTENCY = "memwarden-consistency/v1"
EVIDENCE = "memwarden-evidence/v1"


class EvidenceError(ValueError):
    """A document that does not check out, with the reason."""


def row_leaf(row: dict[str, Any]) -> bytes:
    """The leaf data of a ledger row given as a mapping of ``LEAF_FIELDS``."""
    missing = [name for name in LEAF_FIELDS if name not in row]
    if missing:
        raise EvidenceError(f"a ledger row without {', '.join(missing)}")
    if not isinstance(row["seq"], int) or row["seq"] < 1:
        raise EvidenceError("a ledger row's seq must be a whole number of 1 or more")
    return canonical_json({name: row[name] for name in LEAF_FIELDS}).encode("utf-8")


def _hashes(values: Any, what: str) -> list[bytes]:
    if not isinstance(values, list):
        raise EvidenceError(f"{what} must be a list of hex hashes")
    try:
        return [bytes.fromhex(value) for value in values]
    except (TypeError, ValueError) as exc:
        raise EvidenceError(f"{what} holds something other than hex hashes") from exc


def check_inclusion(row: dict[str, Any], proof: Any, checkpoint: Checkpoint) -> None:
    index = int(row["seq"]) - 1
    try:
        verify_inclusion(
            index,
            checkpoint.size,
            leaf_hash(row_leaf(row)),
            _hashes(proof, "proof"),
            checkpoint.root,
        )
    except ProofError as exc:
        raise EvidenceError(f"ledger row {row['seq']}: {exc}") from exc


def _checkpoint(note: Any, verifier: Verifier) -> Checkpoint:
    if not isinstance(note, str):
        raise EvidenceError("the document carries no signed checkpoint")
    try:
        return open_checkpoint(note, verifier)
    except NoteError as exc:
        raise EvidenceError(f"checkpoint: {exc}") from exc


def verify_document(document: dict[str, Any], verifier: Verifier) -> dict[str, Any]:
    """Check a document of any kind; a summary of what holds, or ``EvidenceError``."""
    kind = document.get("format")
    if kind == INCLUSION:
        return _verify_inclusion(document, verifier)
    if kind == CONSISTENCY:
        return _verify_consistency(document, verifier)
    if kind == EVIDENCE:
        return _verify_evidence(document, verifier)
    raise EvidenceError(f"unknown document format {kind!r}")


def _verify_inclusion(document: dict[str, Any], verifier: Verifier) -> dict[str, Any]:
    checkpoint = _checkpoint(document.get("checkpoint"), verifier)
    row = document.get("row")
    if not isinstance(row, dict):
        raise EvidenceError("the document carries no ledger row")
    check_inclusion(row, document.get("proof"), checkpoint)
    return {"kind": "inclusion", "seq": row["seq"], "tree_size": checkpoint.size}


def _verify_consistency(document: dict[str, Any], verifier: Verifier) -> dict[str, Any]:
    old = _checkpoint(document.get("old_checkpoint"), verifier)
    new = _checkpoint(document.get("new_checkpoint"), verifier)
    try:
        verify_consistency(
            old.size, new.size, old.root, new.root, _hashes(document.get("proof"), "proof")
        )
    except ProofError as exc:
        raise EvidenceError(f"from {old.size} to {new.size} rows: {exc}") from exc
    return {"kind": "consistency", "old_size": old.size, "new_size": new.size}


def bundle_digest(document: dict[str, Any]) -> str:
    """What the attestation signs: SHA-256 of the bundle's canonical JSON without it."""
    body = {key: value for key, value in document.items() if key != "attestation"}
    return sha256(canonical_json(body).encode("utf-8")).hexdigest()


def _verify_evidence(document: dict[str, Any], verifier: Verifier) -> dict[str, Any]:
    checkpoint = _checkpoint(document.get("checkpoint"), verifier)
    attestation = document.get("attestation")
    if not isinstance(attestation, str):
        raise EvidenceError("the bundle carries no signed attestation")
    try:
        attested = open_receipt(attestation, verifier)
    except (NoteError, json.JSONDecodeError) as exc:
        raise EvidenceError(f"attestation: {exc}") from exc
    if attested.get("bundle_sha256") != bundle_digest(document):
        raise EvidenceError("the bundle was changed after it was attested (payloads or rows)")
    entries = document.get("rows")
    if not isinstance(entries, list) or not entries:
        raise EvidenceError("the bundle holds no ledger rows")
    erasures: dict[tuple[str, str], int] = {}
    for entry in entries:
        row = entry.get("row") if isinstance(entry, dict) else None
        if not isinstance(row, dict):
            raise EvidenceError("a bundle entry without its ledger row")
        check_inclusion(row, entry.get("proof"), checkpoint)
        if row["action"] == "erased":
            key = (row["entity_type"], row["entity_id"])
            erasures[key] = max(erasures.get(key, 0), row["seq"])
    erased = 0
    for entry in entries:
        row = entry["row"]
        if entry.get("payload") is None:
            if erasures.get((row["entity_type"], row["entity_id"]), 0) <= row["seq"]:
                raise EvidenceError(
                    f"ledger row {row['seq']} has no payload and no later erasure row"
                )
            erased += 1
        elif not isinstance(entry["payload"], str):
            raise EvidenceError(f"ledger row {row['seq']}'s payload is not text")
    return {
        "kind": "evidence",
        "rows": len(entries),
        "erased_payloads": erased,
        "tree_size": checkpoint.size,
        "checkpoint_time": checkpoint.time,
    }
