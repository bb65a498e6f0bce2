"""memwarden's own matrix work on one BLAS thread, without changing its host's thread pools.

The embedder's forward pass and the vector search are small or memory-bound products: on a
busy machine a BLAS thread pool made a query's embedding ten times slower (25 ms against
260 ms), and its threads spinning after a search took CPU from the rest of the recall. So each
runs inside ``one_thread()``; the host's setting is back when it ends. Importing memwarden sets
no environment variable (it once set ``OPENBLAS_NUM_THREADS=1`` for any host process). While a
block runs the limit is process-wide: BLAS has no per-thread setting.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

_lock = threading.Lock()
_controller: Any = None


@contextmanager
def one_thread() -> Iterator[None]:
    global _controller
    with _lock:
        if _controller is None:
            # Imported after numpy (this module's callers use it): it finds numpy's BLAS.
            from threadpoolctl import ThreadpoolController

            _controller = ThreadpoolController()  # ~1 ms to build; a limit then costs ~0.1 ms
    with _controller.limit(limits=1, user_api="blas"):
        yield
