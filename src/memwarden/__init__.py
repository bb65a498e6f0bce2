"""memwarden: a self-hosted memory core for AI agents whose every change is audited."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from memwarden.observability.logs import library_default as _library_logging

# The local embedder's matrix products are small: one BLAS thread each is fastest, and on a
# busy machine a thread pool per process made them ten times slower (measured: 25 ms against
# 260 ms per query). Set before numpy is first imported; an explicit setting wins.
for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

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
