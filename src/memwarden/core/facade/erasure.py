"""Facade methods: erasure for privacy (spec 2.1 Erasure, issue 15 section 2)."""

from __future__ import annotations

from functools import partial

from memwarden.audit.oplog import logged
from memwarden.core import access
from memwarden.core.erasure import apply, scrub
from memwarden.core.erasure import receipt as receipts
from memwarden.core.erasure import select as selecting
from memwarden.core.erasure.receipt import EraseReceipt
from memwarden.core.erasure.select import Criteria, Selection
from memwarden.core.facade.base import FacadeBase
from memwarden.errors import InvalidInputError

MAX_WAIT_SECONDS = 3600.0


class ErasureFacade(FacadeBase):
    @logged
    def erase(
        self,
        memory_id: int,
        reason: str,
        *,
        sources: str = "all",
        wait: float | None = None,
    ) -> EraseReceipt:
        """Erase a memory and every copy of its text: (``sources``: ``all`` by default,
        ``span`` or ``keep``) the interactions and chunks it came from. The receipt says
        ``scrubbed`` when no old copy is left on disk, else ``pending`` (a background step
        finishes the scrub); ``wait``: try for up to that many seconds before returning."""
        access.check_erase()  # a key erases only with the erase scope
        access.charge_write(self.write_limiter)
        chosen = selecting.check_sources(sources)
        _check_wait(wait)
        receipt = apply.run(
            self.runtime,
            reason,
            {"memory": memory_id, "sources": chosen},
            lambda conn: selecting.for_memories(conn, [memory_id], chosen),
            strict=True,
        )
        return self._finish(receipt, wait)

    def erase_preview(
        self,
        *,
        project: str | None = None,
        actor: str | None = None,
        query: str | None = None,
        sources: str = "all",
    ) -> Selection:
        """The dry run of a bulk erase: exactly what ``erase_matching`` would take now."""
        chosen = selecting.check_sources(sources)
        with self.store.read() as conn:
            return selecting.matching(conn, Criteria(project, actor, query), chosen)

    @logged
    def erase_matching(
        self,
        reason: str,
        *,
        project: str | None = None,
        actor: str | None = None,
        query: str | None = None,
        sources: str = "all",
        wait: float | None = None,
    ) -> EraseReceipt:
        """Bulk erase for the right to be forgotten: every memory, interaction and chunk that
        matches all the given criteria (a project, the actor that wrote it, a text query)."""
        access.check_erase()
        access.charge_write(self.write_limiter)
        chosen = selecting.check_sources(sources)
        criteria = Criteria(project, actor, query)
        criteria.check()
        _check_wait(wait)
        receipt = apply.run(
            self.runtime,
            reason,
            {**criteria.to_dict(), "sources": chosen},
            partial(selecting.matching, criteria=criteria, sources=chosen),
            strict=False,
        )
        return self._finish(receipt, wait)

    def erase_status(
        self, *, memory_id: int | None = None, receipt_id: int | None = None
    ) -> EraseReceipt:
        """The newest receipt of an erased memory, or a receipt by its id."""
        if (memory_id is None) == (receipt_id is None):
            raise InvalidInputError("give a memory id or a receipt id")
        with self.store.read() as conn:
            if receipt_id is not None:
                return receipts.load(conn, receipt_id)
            assert memory_id is not None
            return receipts.latest_for_memory(conn, memory_id)

    def finish_scrubs(self, *, rewrite_any_size: bool = False) -> int:
        """One pass of the background scrub now; how many receipts are still pending.
        ``rewrite_any_size``: on PostgreSQL, rewrite the touched tables whatever their size
        (each locked while it is rewritten: for a quiet hour)."""
        return self.scrubber.run_once(rewrite_any_size=rewrite_any_size)

    def _finish(self, receipt: EraseReceipt, wait: float | None) -> EraseReceipt:
        memory = receipt.memory
        if wait:
            receipt = scrub.wait(self.runtime, receipt, wait)
        elif self.store.is_sqlite:
            # Emptying the WAL costs at most a checkpoint of it, never a wait: done at once.
            receipt = scrub.attempt(self.runtime, receipt)
        # PostgreSQL's rewrite of the touched tables is left to the background scrub, which
        # does it once for every erase of a burst (erase time stays flat as tables grow).
        if not receipt.done:
            self.scrubber.kick()
        receipt.memory = memory
        return receipt


def _check_wait(wait: float | None) -> None:
    if wait is not None and not 0 <= wait <= MAX_WAIT_SECONDS:
        raise InvalidInputError(f"wait must be between 0 and {MAX_WAIT_SECONDS:.0f} seconds")
