"""memwarden: a self-hosted memory core for AI agents whose every change is audited."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

# Nothing here touches the host's environment or thread pools: the local embedder limits BLAS
# to one thread only around its own forward pass (core/embedding/minilm.py).

if TYPE_CHECKING:
    from memwarden.config import Settings
    from memwarden.core.service import Memwarden

__all__ = ["Memwarden", "Settings"]
__version__ = "0.1.0"

# As a library memwarden writes nothing to stdout: its structlog events go to the host's
# ``logging`` (unless the host configured structlog itself). See observability/logs.py.
# A parallel verify's worker process (audit/verify_worker.py, started with this variable set)
# skips it: loading structlog was a third of the worker's start, and it sets this up itself
# before it loads any module that logs.
VERIFY_WORKER_ENV = "MEMWARDEN_VERIFY_WORKER"
if os.environ.get(VERIFY_WORKER_ENV) != "1":
    from memwarden.observability.logs import library_default

    library_default()


def __getattr__(name: str) -> Any:
    # Imported on first use, so a process that needs one module (a verify worker) does not
    # pay for loading the whole service.
    if name == "Memwarden":
        from memwarden.core.service import Memwarden

        return Memwarden
    if name == "Settings":
        from memwarden.config import Settings

        return Settings
    raise AttributeError(f"module 'memwarden' has no attribute {name!r}")
