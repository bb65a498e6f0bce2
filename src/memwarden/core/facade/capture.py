"""Facade methods: captured interactions and the extraction of candidates from them
(core/capture.py, core/extraction/)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from memwarden.audit.oplog import logged, logged_as
from memwarden.core import access
from memwarden.core import capture as interactions
from memwarden.core.capture import ImportReport, Interaction
from memwarden.core.extraction import runner as extraction
from memwarden.core.extraction.base import Extractor
from memwarden.core.extraction.runner import ExtractReport, make_extractor
from memwarden.core.facade.base import FacadeBase


class CaptureFacade(FacadeBase):
    @logged
    def capture(
        self,
        project: str,
        prompt: str,
        response: str,
        client: str = "",
        created_at: datetime | str | None = None,
    ) -> Interaction:
        access.check_write(project)
        access.charge_write(self.write_limiter)
        return interactions.capture(self.runtime, project, prompt, response, client, created_at)

    @logged_as("capture_import", project_arg="default_project")
    def capture_lines(
        self, lines: Iterable[str | bytes], default_project: str | None = None
    ) -> ImportReport:
        """Capture JSON lines; bad lines are reported by number and the good ones kept."""
        return interactions.import_lines(self.runtime, lines, default_project=default_project)

    @logged
    def get_interaction(self, interaction_id: int) -> Interaction:
        return interactions.get(self.runtime, interaction_id)

    @logged
    def list_interactions(self, **filters: Any) -> list[Interaction]:
        return interactions.list_interactions(self.runtime, **filters)

    @logged
    def extract(
        self,
        project: str | None = None,
        *,
        extractor: str | Extractor | None = None,
        batch_size: int | None = None,
        limit: int | None = None,
    ) -> ExtractReport:
        """Candidates from the interactions not yet processed (by ``rules`` unless told)."""
        chosen = (
            make_extractor(self.settings, extractor) if isinstance(extractor, str) else extractor
        )
        try:
            return extraction.run(
                self.runtime, project=project, extractor=chosen, batch_size=batch_size, limit=limit
            )
        finally:
            if isinstance(extractor, str) and chosen is not None:
                chosen.close()
