"""memwarden's own matrix work on one BLAS thread, without changing its host's thread pools.

The embedder's forward pass and the vector search are small or memory-bound products: on a
busy machine a BLAS thread pool made a query's embedding ten times slower (25 ms against
260 ms), and its threads spinning after a search took CPU from the rest of the recall. So each
runs inside ``one_thread()``; the host's setting is back when it ends. Importing memwarden sets
no environment variable (it once set ``OPENBLAS_NUM_THREADS=1`` for any host process).

How the limit is set, measured with numpy's OpenBLAS 0.3.31 (pthreads):

- The process-wide setter that threadpoolctl calls did not hold for a query embedded on a
  worker thread: it still ran on two threads (17 ms of CPU for 8.7 ms of wall time). OpenBLAS's
  ``openblas_set_num_threads_local`` did (13 ms for 13 ms), so it is used when the library has
  it, threadpoolctl's limit otherwise (another BLAS).
- Either way the setting is the process's, not the thread's (a thread holding it limits the
  others too). So blocks on several threads at once share one limit: the first to enter sets
  it, the last to leave restores what the first found (each restoring what it found would leave
  the pool limited, or unlimited under a running block, depending on the order).
"""

from __future__ import annotations

import ctypes
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

# OpenBLAS's setter that holds on any thread (scipy-openblas exports it under this name).
LOCAL_SETTER = "openblas_set_num_threads_local"

_lock = threading.Lock()
_controller: Any = None  # threadpoolctl's, built on first use
_local_setter: Any = None  # ctypes function (int → previous int), when the BLAS has one
_restore: Any = None  # puts the host's setting back; set while ``_inside`` > 0
_inside = 0


@contextmanager
def one_thread() -> Iterator[None]:
    global _restore, _inside
    with _lock:
        if _inside == 0:
            _restore = _limit()
        _inside += 1
    try:
        yield
    finally:
        with _lock:
            _inside -= 1
            if _inside == 0:
                _restore()
                _restore = None


def _limit() -> Callable[[], object]:
    """One BLAS thread from now; returns what puts the previous setting back (under
    ``_lock``)."""
    global _controller, _local_setter
    if _controller is None:
        # Imported after numpy (this module's callers use it): it finds numpy's BLAS.
        from threadpoolctl import ThreadpoolController

        _controller = ThreadpoolController()  # ~1 ms to build; a limit then costs ~0.1 ms
        _local_setter = _find_local_setter(_controller)
    if _local_setter is not None:
        previous = int(_local_setter(1))
        return lambda: _local_setter(previous)
    return _controller.limit(limits=1, user_api="blas").restore_original_limits  # type: ignore[no-any-return]


def _find_local_setter(controller: Any) -> Any:
    for lib in controller.lib_controllers:
        setter = getattr(lib.dynlib, LOCAL_SETTER, None) if lib.internal_api == "openblas" else None
        if setter is not None:
            setter.argtypes = [ctypes.c_int]
            setter.restype = ctypes.c_int
            return setter
    return None
