"""What every group of the ``Memwarden`` facade may use: the opened database's parts.

``Memwarden`` (core/service.py) sets these attributes when it opens; each group in this
package reads them. A group that calls another group's methods subclasses that group, so
the type checker sees the call and no signature is written twice.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from memwarden.audit.actor import current_actor
from memwarden.core import provenance

if TYPE_CHECKING:
    from memwarden.audit.ledger import Ledger
    from memwarden.audit.oplog import OpLog
    from memwarden.audit.reads import ReadLog
    from memwarden.config import Settings
    from memwarden.core.access import WriteLimiter
    from memwarden.core.checkpoints import Checkpoints
    from memwarden.core.erasure.scrub import Scrubber
    from memwarden.core.runtime import Runtime
    from memwarden.db.store import Store
    from memwarden.observability.alerts import Alerts


class FacadeBase:
    settings: Settings
    store: Store
    runtime: Runtime
    ledger: Ledger
    alerts: Alerts
    oplog: OpLog
    reads: ReadLog
    database_id: str
    checkpoints: Checkpoints
    scrubber: Scrubber
    write_limiter: WriteLimiter

    def _served(self, memory_ids: list[int], operation: str) -> None:
        """Record who was served these memories (get, recall and context all do)."""
        self.reads.served(memory_ids, current_actor(), provenance.current().key, operation)
