"""Facade methods: signed checkpoints, Merkle proofs and evidence (docs/ledger.md)."""

from __future__ import annotations

from typing import Any

from memwarden.audit import tree
from memwarden.audit.oplog import logged
from memwarden.core import evidence
from memwarden.core.checkpoints import CheckpointResult, CheckpointVerdict
from memwarden.core.facade.base import FacadeBase
from memwarden.errors import InvalidInputError
from memwarden.tlog.note import NoteError, Verifier


def _verifier(key: str | None) -> Verifier | None:
    if key is None:
        return None
    try:
        return Verifier.parse(key)
    except NoteError as exc:
        raise InvalidInputError(f"the verifier key: {exc}") from exc


class CheckpointsFacade(FacadeBase):
    @logged
    def checkpoint(
        self, trigger: str = "manual", progress: tree.Progress | None = None
    ) -> CheckpointResult:
        """Extend the tree to the ledger's head, sign a checkpoint and publish it."""
        return self.checkpoints.make(trigger, progress)

    @logged
    def prove(
        self, seq: int, checkpoint: str | None = None, verifier_key: str | None = None
    ) -> dict[str, Any]:
        """An inclusion proof of ledger row ``seq`` (a ``memwarden-inclusion/v1`` document)."""
        return self.checkpoints.prove(seq, checkpoint, _verifier(verifier_key))

    @logged
    def prove_consistency(
        self, old_checkpoint: str, verifier_key: str | None = None
    ) -> dict[str, Any]:
        """That the latest checkpoint extends an older one (``memwarden-consistency/v1``)."""
        return self.checkpoints.consistency(old_checkpoint, _verifier(verifier_key))

    @logged
    def verify_checkpoint(
        self,
        checkpoint: str,
        verifier_key: str | None = None,
        progress: tree.Progress | None = None,
    ) -> CheckpointVerdict:
        """Whether the ledger still holds, and extends, what a published checkpoint saw."""
        return self.checkpoints.verify(checkpoint, _verifier(verifier_key), progress)

    @logged
    def export_evidence(self, memory_id: int) -> dict[str, Any]:
        """A memory's self-contained evidence bundle (``memwarden-evidence/v1``)."""
        return evidence.export(self.checkpoints, self.ledger.key, memory_id)

    @logged
    def rebuild_tree(
        self, repair: bool = False, progress: tree.Progress | None = None
    ) -> tree.RebuildReport:
        """Recompute the Merkle tree from every ledger row and compare it with the stored one;
        ``repair`` replaces the stored tree with the recomputed one."""
        return tree.rebuild(self.store, repair=repair, progress=progress)

    def sign_receipt(self, body: dict[str, Any]) -> str:
        """A receipt (an erasure's) signed with the checkpoint key: a signed note that
        ``memwarden.tlog.note.open_receipt`` checks with the verifier key alone."""
        return self.checkpoints.sign_receipt(body)

    def checkpoint_status(self) -> dict[str, Any]:
        return self.checkpoints.status()

    def checkpoint_verifier_key(self) -> str:
        return self.checkpoints.verifier().text()
