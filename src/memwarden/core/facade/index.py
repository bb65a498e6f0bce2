"""Facade methods: the vector index as an operator sees it (core/embedding_index.py)."""

from __future__ import annotations

from collections.abc import Callable

from memwarden.audit.oplog import logged
from memwarden.core import embedding_index
from memwarden.core.facade.base import FacadeBase


class IndexFacade(FacadeBase):
    def wait_for_embeddings(self, timeout: float = 30.0) -> bool:
        """Block until the vectors of everything committed so far in this process are written."""
        return self.runtime.embed_worker.wait(timeout)

    def embedding_status(self, *, load: bool = False) -> embedding_index.IndexStatus:
        return embedding_index.status(self.runtime, load=load)

    def start_index_sweep(self) -> None:
        """In the background: load the embedder and write every missing or stale vector
        (a long-running server's start; a model change re-embeds this way)."""
        self.runtime.embed_worker.request_sweep()

    @logged
    def rebuild_index(
        self, progress: Callable[[int, int], None] | None = None, *, full: bool = False
    ) -> int:
        """Write every missing or stale vector (``full``: every vector again); how many."""
        return embedding_index.rebuild(self.runtime, progress, full=full)
