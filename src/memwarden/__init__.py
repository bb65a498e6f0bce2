"""memwarden: a self-hosted memory core for AI agents whose every change is audited."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from memwarden.observability.logs import library_default as _library_logging

# Nothing here touches the host's environment or thread pools: the local embedder limits BLAS
# to one thread only around its own forward pass (core/embedding/minilm.py).

if TYPE_CHECKING:
    from memwarden.config import Settings
    from memwarden.core.service import Memwarden

__all__ = ["Memwarden", "Settings"]
__version__ = "0.1.0"

# As a library memwarden writes nothing to stdout: its structlog events go to the host's
# ``logging`` (unless the host configured structlog itself). See observability/logs.py.
_library_logging()


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
