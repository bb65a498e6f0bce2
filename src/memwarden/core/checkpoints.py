"""Signed checkpoints of the ledger: make and publish one, prove a row against one, check the
ledger against a published one, and export a memory's evidence for a third party.

A checkpoint is the Merkle tree head over the ledger's tagged rows (``audit.tree``) in the C2SP
signed-note format, signed with the Ed25519 key (``audit.signing``). Before signing, the tree
must extend the last checkpoint this database made; before publishing to a folder, it must
extend the newest checkpoint published there. ``verify`` rebuilds the tree from every ledger
row, so neither the stored tree nor the stored checkpoints are trusted for it.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import structlog
from sqlalchemy import Connection, insert, select

from memwarden.audit import tree
from memwarden.audit.chain import format_ts
from memwarden.audit.signing import SigningKeyError, ensure_apart, load_signer, origin_for
from memwarden.config import Settings
from memwarden.db import schema
from memwarden.db.store import Store
from memwarden.errors import InvalidInputError, LedgerError
from memwarden.observability.faults import clear_fault, raise_fault
from memwarden.observability.publishers import Published, configured
from memwarden.tlog import evidence
from memwarden.tlog.merkle import (
    ProofError,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    verify_consistency,
    verify_inclusion,
)
from memwarden.tlog.note import (
    Checkpoint,
    NoteError,
    Signer,
    Verifier,
    open_checkpoint,
    sign_receipt,
)

log = structlog.get_logger(__name__)

C = schema.checkpoints
PUB = schema.checkpoint_publications
TREE_FAULT = "checkpoint-tree"


class CheckpointError(LedgerError):
    """A checkpoint could not be made, or a proof could not be given."""


@dataclass(frozen=True)
class CheckpointRecord:
    id: int
    tree_size: int
    root: str
    note: str
    trigger: str
    created_at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "created_at": self.created_at.isoformat()}


@dataclass
class CheckpointResult:
    record: CheckpointRecord
    publications: list[Published] = field(default_factory=list)

    @property
    def published_ok(self) -> bool:
        return all(p.ok for p in self.publications)

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.record.to_dict(),
            "publications": [p.to_dict() for p in self.publications],
        }


@dataclass
class CheckpointVerdict:
    ok: bool
    reason: str | None
    checkpoint_size: int
    checkpoint_time: str | None
    ledger_size: int
    proof: list[str] = field(default_factory=list)
    tree_mismatches: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _record(row: Any) -> CheckpointRecord:
    return CheckpointRecord(
        int(row.id), int(row.tree_size), row.root, row.note, row.trigger, row.created_at
    )


class Checkpoints:
    """One database's checkpoints. Thread-safe: one checkpoint at a time per process (and the
    tree's own check-and-set across processes)."""

    def __init__(self, settings: Settings, store: Store, database_id: str) -> None:
        self.settings = settings
        self.store = store
        self.database_id = database_id
        self.origin = origin_for(database_id)
        self._lock = threading.Lock()
        self._signer: Signer | None = None

    # -- keys ---------------------------------------------------------------------------
    def signer(self) -> Signer:
        if self._signer is None:
            ensure_apart(
                self.settings.resolved_checkpoint_key_file, self.settings.resolved_ledger_key_file
            )
            self._signer = load_signer(self.settings.resolved_checkpoint_key_file, self.database_id)
        return self._signer

    def verifier(self) -> Verifier:
        return self.signer().verifier()

    def sign_receipt(self, body: dict[str, Any]) -> str:
        """An erase receipt (or any statement) signed with the checkpoint key, as a note that
        ``tlog.note.open_receipt`` checks with only the verifier key."""
        return sign_receipt(self.signer(), body)

    # -- reading ------------------------------------------------------------------------
    def latest(self) -> CheckpointRecord | None:
        with self.store.read() as conn:
            row = conn.execute(select(C).order_by(C.c.id.desc()).limit(1)).first()
        return _record(row) if row is not None else None

    def publications(self, limit: int = 20) -> list[dict[str, Any]]:
        with self.store.read() as conn:
            rows = conn.execute(select(PUB).order_by(PUB.c.id.desc()).limit(limit)).all()
        return [
            {
                "checkpoint_id": int(r.checkpoint_id),
                "publisher": r.publisher,
                "target": r.target,
                "state": r.state,
                "attempts": int(r.attempts),
                "error": r.error,
                "at": r.created_at.isoformat(),
            }
            for r in rows
        ]

    def status(self) -> dict[str, Any]:
        """The last checkpoint and each publisher's last outcome (dashboard, doctor)."""
        latest = self.latest()
        last_by_publisher: dict[str, dict[str, Any]] = {}
        for item in reversed(self.publications(200)):
            last_by_publisher[item["publisher"]] = item
        configured_names = [p.name for p in configured(self.settings, lambda _text: None)]
        return {
            "latest": latest.to_dict() if latest is not None else None,
            "publishers": configured_names,
            "last_publication": last_by_publisher,
            "healthy": all(
                last_by_publisher.get(name, {}).get("state", "delivered") == "delivered"
                for name in configured_names
            ),
        }

    # -- making -------------------------------------------------------------------------
    def make(
        self, trigger: str = "manual", progress: tree.Progress | None = None
    ) -> CheckpointResult:
        signer = self.signer()  # a missing key fails before any work
        with self._lock:
            head = tree.extend(self.store, progress=progress)
            last = self.latest()
            if last is not None:
                self._check_extends(last, head)
            now = datetime.now(UTC)
            body = Checkpoint(self.origin, head.size, head.root, (f"time {format_ts(now)}",))
            note = signer.sign(body.text())
            with self.store.write() as unit:
                inserted = unit.conn.execute(
                    insert(C).values(
                        tree_size=head.size,
                        root=head.root.hex(),
                        note=note,
                        trigger=trigger,
                        created_at=now,
                    )
                ).inserted_primary_key
                assert inserted is not None
                new_id = inserted[0]
            record = CheckpointRecord(int(new_id), head.size, head.root.hex(), note, trigger, now)
            log.info("checkpoint_made", size=head.size, trigger=trigger)
            return CheckpointResult(record, self._publish(record))

    def _check_extends(self, last: CheckpointRecord, head: tree.TreeHead) -> None:
        """The tree about to be signed must extend the last one signed here."""
        try:
            if last.tree_size > head.size:
                raise ProofError(
                    f"the ledger holds {head.size} rows, fewer than the {last.tree_size} of the "
                    f"last checkpoint (made {last.created_at.isoformat()})"
                )
            with self.store.read() as conn:
                proof = consistency_proof(
                    last.tree_size, head.size, tree.StoredTree(conn, head.size).subtree
                )
            verify_consistency(
                last.tree_size, head.size, bytes.fromhex(last.root), head.root, proof
            )
        except ProofError as exc:
            message = (
                f"refusing to sign: {exc}. Run `memwarden audit verify --checkpoint` against a "
                "published checkpoint; if the ledger is sound, `memwarden audit rebuild-tree --yes`"
            )
            raise_fault(TREE_FAULT, "Merkle tree disagrees with the last checkpoint", message)
            raise CheckpointError(message) from exc
        clear_fault(TREE_FAULT)

    def _publish(self, record: CheckpointRecord) -> list[Published]:
        from memwarden.core.checkpoint_publish import publish_all  # it builds on this module

        return publish_all(self, record)

    # -- proving ------------------------------------------------------------------------
    def _checkpoint(self, note: str | None, verifier: Verifier | None) -> tuple[Checkpoint, str]:
        if note is None:
            latest = self.latest()
            if latest is None:
                raise CheckpointError("no checkpoint yet: run `memwarden audit checkpoint`")
            note = latest.note
        try:
            return open_checkpoint(note, verifier or self.verifier()), note
        except NoteError as exc:
            raise CheckpointError(f"the checkpoint does not verify: {exc}") from exc

    def prove(
        self, seq: int, note: str | None = None, verifier: Verifier | None = None
    ) -> dict[str, Any]:
        """An inclusion proof of ledger row ``seq`` in a checkpoint's tree (the latest made
        here, or the one given), checked before it is returned."""
        checkpoint, note = self._checkpoint(note, verifier)
        if not 1 <= seq <= checkpoint.size:
            raise InvalidInputError(
                f"row {seq} is not in the checkpoint's tree of {checkpoint.size} rows"
                + (": make a newer checkpoint" if seq > checkpoint.size else "")
            )
        if self._stored_size() < checkpoint.size:
            tree.extend(self.store)
        with self.store.read() as conn:
            return self._inclusion(conn, seq, checkpoint, note)

    def consistency(self, old_note: str, verifier: Verifier | None = None) -> dict[str, Any]:
        """A ``memwarden-consistency/v1`` document: the proof that the latest checkpoint made
        here extends ``old_note`` (a published one), checked before it is returned."""
        old, old_note = self._checkpoint(old_note, verifier)
        new, new_note = self._checkpoint(None, verifier)
        if old.size > new.size:
            raise CheckpointError(
                f"the checkpoint given covers {old.size} rows, more than the latest made here "
                f"({new.size}): this store was put back to an older state"
            )
        if self._stored_size() < new.size:
            tree.extend(self.store)
        with self.store.read() as conn:
            proof = consistency_proof(old.size, new.size, tree.StoredTree(conn, new.size).subtree)
        try:
            verify_consistency(old.size, new.size, old.root, new.root, proof)
        except ProofError as exc:
            raise CheckpointError(
                f"the latest checkpoint does not extend the one given ({exc}): run `memwarden "
                "audit verify --checkpoint` against it"
            ) from exc
        return {
            "format": evidence.CONSISTENCY,
            "old_checkpoint": old_note,
            "new_checkpoint": new_note,
            "proof": [p.hex() for p in proof],
        }

    def _stored_size(self) -> int:
        with self.store.read() as conn:
            return tree.load_frontier(conn).size

    def _inclusion(
        self, conn: Connection, seq: int, checkpoint: Checkpoint, note: str
    ) -> dict[str, Any]:
        stored = tree.StoredTree(conn, checkpoint.size)
        proof = inclusion_proof(seq - 1, checkpoint.size, stored.subtree)
        row = next(tree.leaf_rows(conn, seq, seq))
        try:
            verify_inclusion(
                seq - 1, checkpoint.size, leaf_hash(tree.leaf_data(row)), proof, checkpoint.root
            )
        except ProofError as exc:
            raise CheckpointError(
                f"ledger row {seq} does not lead to the checkpoint's root ({exc}): the ledger "
                "or its stored tree changed after the checkpoint; run `memwarden audit verify "
                "--checkpoint`"
            ) from exc
        return {
            "format": evidence.INCLUSION,
            "row": tree.row_dict(row),
            "tree_size": checkpoint.size,
            "proof": [p.hex() for p in proof],
            "checkpoint": note,
        }

    # -- verifying ----------------------------------------------------------------------
    def verify(
        self, note: str, verifier: Verifier | None = None, progress: tree.Progress | None = None
    ) -> CheckpointVerdict:
        """Whether this ledger still holds what a published checkpoint saw, and extends it."""
        try:
            checkpoint = open_checkpoint(note, verifier or self.verifier())
        except NoteError as exc:
            return CheckpointVerdict(False, f"the checkpoint does not verify: {exc}", 0, None, 0)
        when = checkpoint.time or "an unknown time"
        report = tree.rebuild(self.store, roots_at=(checkpoint.size,), progress=progress)
        verdict = CheckpointVerdict(
            False, None, checkpoint.size, checkpoint.time, report.size,
            tree_mismatches=report.mismatches, seconds=report.seconds,
        )  # fmt: skip
        if report.size < checkpoint.size:
            verdict.reason = (
                f"the ledger holds {report.size} rows but the checkpoint published at {when} "
                f"covers {checkpoint.size}: the store was put back to an older state (or its "
                "newest rows were removed)"
            )
            return verdict
        if report.roots_at.get(checkpoint.size) != checkpoint.root:
            verdict.reason = (
                f"the ledger's first {checkpoint.size} rows no longer hash to the root published "
                f"at {when}: rows at or before row {checkpoint.size} were rewritten, removed or "
                "reordered since (or the store was put back to an older state and written again)"
            )
            return verdict
        if not report.mismatches:
            if self._stored_size() < report.size:
                tree.extend(self.store, to_size=report.size)
            with self.store.read() as conn:
                proof = consistency_proof(
                    checkpoint.size, report.size, tree.StoredTree(conn, report.size).subtree
                )
            verify_consistency(checkpoint.size, report.size, checkpoint.root, report.root, proof)
            verdict.proof = [p.hex() for p in proof]
        verdict.ok = True
        return verdict

    def inclusion(
        self, conn: Connection, seq: int, checkpoint: Checkpoint, note: str
    ) -> dict[str, Any]:
        return self._inclusion(conn, seq, checkpoint, note)

    def opened(self, note: str) -> tuple[Checkpoint, str]:
        return self._checkpoint(note, None)

    # -- schedule -----------------------------------------------------------------------
    def due(self, now: datetime | None = None) -> bool:
        """Whether the configured cadence calls for a checkpoint now: ``every_rows`` new
        ledger rows since the last one, or ``every_minutes`` passed with any new row."""
        rows, minutes = self.settings.checkpoint_every_rows, self.settings.checkpoint_every_minutes
        if not rows and not minutes:
            return False
        with self.store.read() as conn:
            size = tree.ledger_size(conn)
        latest = self.latest()
        last_size = latest.tree_size if latest is not None else 0
        if size <= last_size:
            return False
        if rows and size - last_size >= rows:
            return True
        if minutes:
            if latest is None:
                return True
            elapsed = (now or datetime.now(UTC)) - latest.created_at
            return elapsed.total_seconds() >= minutes * 60
        return False


__all__ = [
    "CheckpointError",
    "CheckpointRecord",
    "CheckpointResult",
    "CheckpointVerdict",
    "Checkpoints",
    "SigningKeyError",
]
