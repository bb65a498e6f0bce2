"""What every part of the ``Memwarden`` facade may use: the opened database's parts.

The facade is one class assembled from a mixin per area (``service.py`` holds the memory
lifecycle; integrity, harness and dashboard views have modules of their own) so that no
module grows past one concept. Each mixin reads these attributes; ``Memwarden`` sets them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from memwarden.audit.ledger import Ledger
    from memwarden.audit.oplog import OpLog
    from memwarden.config import Settings
    from memwarden.core.checkpoints import Checkpoints
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
    database_id: str
    checkpoints: Checkpoints
