"""A memory's evidence bundle for a third party: its ledger rows, payloads (or erasure
markers), an inclusion proof for each, the signed checkpoint they chain to, and an
attestation signed with the same key over the whole bundle. ``python -m memwarden.tlog
verify BUNDLE --key KEY`` checks it offline (``tlog.evidence``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from memwarden.audit import records
from memwarden.audit.chain import ChainKey, format_ts
from memwarden.core.checkpoints import Checkpoints
from memwarden.db import schema
from memwarden.errors import NotFoundError
from memwarden.tlog import evidence

L, P = schema.ledger, schema.ledger_payloads


def export(checkpoints: Checkpoints, key: ChainKey, memory_id: int) -> dict[str, Any]:
    """Made against the latest checkpoint, or a new one when it does not cover every row of
    the memory; checked with the verifier key before it is returned. Refused when a row or
    payload of the memory fails its tag under the ledger ``key``: the bundle's attestation
    would otherwise vouch for text memwarden never wrote (a third party cannot check a
    payload's keyed digest)."""
    with checkpoints.store.read() as conn:
        records.require_authentic(records.history(conn, "memory", str(memory_id), key))
        seqs = [
            int(s)
            for s in conn.execute(
                select(L.c.seq)
                .where(L.c.entity_type == "memory", L.c.entity_id == str(memory_id))
                .order_by(L.c.seq)
            ).scalars()
        ]
    if not seqs:
        raise NotFoundError(f"memory {memory_id} has no ledger rows")
    latest = checkpoints.latest()
    if latest is None or latest.tree_size < seqs[-1]:
        latest = checkpoints.make("export").record
    checkpoint, note = checkpoints.opened(latest.note)
    rows = []
    with checkpoints.store.read() as conn:
        payloads = {
            int(r.seq): (r.body, r.erased_at)
            for r in conn.execute(select(P.c.seq, P.c.body, P.c.erased_at).where(P.c.seq.in_(seqs)))
        }
        for seq in seqs:
            proof = checkpoints.inclusion(conn, seq, checkpoint, note)
            body, erased_at = payloads.get(seq, (None, None))
            rows.append(
                {
                    "row": proof["row"],
                    "proof": proof["proof"],
                    "payload": body,
                    "erased_at": erased_at,
                }
            )
    bundle: dict[str, Any] = {
        "format": evidence.EVIDENCE,
        "memory_id": memory_id,
        "origin": checkpoints.origin,
        "verifier_key": checkpoints.verifier().text(),
        "exported_at": format_ts(datetime.now(UTC)),
        "checkpoint": note,
        "rows": rows,
    }
    bundle["attestation"] = checkpoints.sign_receipt(
        {
            "kind": "evidence-bundle",
            "memory_id": memory_id,
            "bundle_sha256": evidence.bundle_digest(bundle),
        }
    )
    evidence.verify_document(bundle, checkpoints.verifier())  # never hand out what fails
    return bundle
