"""memwarden: a self-hosted memory core for AI agents whose every change is audited."""

from __future__ import annotations

import sys
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
# A parallel verify's worker process (audit/verify_worker.py) skips it: loading structlog was
# most of the worker's start, and it sets this up itself before it loads any module that
# logs. Its parent marks it with an interpreter option (``-X memwarden_verify_worker``), which
# no child of it inherits and no environment can set by mistake.
VERIFY_WORKER_OPTION = "memwarden_verify_worker"
if VERIFY_WORKER_OPTION not in sys._xoptions:
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
