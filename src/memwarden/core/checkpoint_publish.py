"""Publishing a checkpoint off the machine, and guarding the history already published.

Before a folder publisher writes, the newest checkpoint already in the folder must verify
with this store's key and be one this ledger extends (a consistency proof from the stored
tree): a store put back to an older state, or rewritten, is refused there with the reason
instead of publishing a fork.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import insert

from memwarden.audit import tree
from memwarden.core.checkpoints import PUB, CheckpointRecord, Checkpoints
from memwarden.observability.faults import clear_fault, raise_fault
from memwarden.observability.publishers import Published, PublishError, configured, publish
from memwarden.tlog.merkle import ProofError, consistency_proof, verify_consistency
from memwarden.tlog.note import NoteError, open_checkpoint


def publish_all(cps: Checkpoints, record: CheckpointRecord) -> list[Published]:
    """Hand the checkpoint to every configured publisher; record each outcome; a failing
    publisher raises its fault (one critical alert per episode), a working one clears it."""
    outcomes = []
    for publisher in configured(
        cps.settings, lambda previous: check_previous(cps, previous, record)
    ):
        outcome = publish(
            publisher,
            record.note,
            record.tree_size,
            cps.settings.checkpoint_publish_attempts,
            cps.settings.checkpoint_publish_backoff,
        )
        outcomes.append(outcome)
        key = f"checkpoint-publish:{publisher.name}"
        if outcome.ok:
            clear_fault(key)
        else:
            raise_fault(
                key,
                f"Checkpoint publishing failed ({publisher.name})",
                f"checkpoint of {record.tree_size} rows not published to {publisher.target} "
                f"after {outcome.attempts} attempt(s): {outcome.error}",
                {"publisher": publisher.name, "tree_size": record.tree_size},
            )
    if outcomes:
        with cps.store.write() as unit:
            unit.conn.execute(
                insert(PUB),
                [
                    {
                        "checkpoint_id": record.id,
                        "publisher": o.publisher,
                        "target": o.target[:300],
                        "state": "delivered" if o.ok else "failed",
                        "attempts": o.attempts,
                        "error": o.error,
                        "created_at": datetime.now(UTC),
                    }
                    for o in outcomes
                ],
            )
    return outcomes


def check_previous(cps: Checkpoints, previous_note: str, record: CheckpointRecord) -> None:
    """A folder's newest published checkpoint must be one this ledger extends."""
    try:
        previous = open_checkpoint(previous_note, cps.verifier())
    except NoteError as exc:
        raise PublishError(
            f"the checkpoint already published there does not verify with this store's key "
            f"({exc}); refusing to publish over it",
            final=True,
        ) from exc
    when = previous.time or "an unknown time"
    if previous.size > record.tree_size:
        raise PublishError(
            f"the checkpoint published at {when} covers {previous.size} rows but this ledger "
            f"holds {record.tree_size}: the store was put back to an older state",
            final=True,
        )
    with cps.store.read() as conn:
        proof = consistency_proof(
            previous.size, record.tree_size, tree.StoredTree(conn, record.tree_size).subtree
        )
    try:
        verify_consistency(
            previous.size, record.tree_size, previous.root, bytes.fromhex(record.root), proof
        )
    except ProofError as exc:
        raise PublishError(
            f"this ledger does not extend the checkpoint published at {when} ({exc}): its "
            f"first {previous.size} rows were rewritten",
            final=True,
        ) from exc
