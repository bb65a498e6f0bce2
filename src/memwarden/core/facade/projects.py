"""Facade methods: projects and their state (core/projects.py)."""

from __future__ import annotations

from memwarden.audit.oplog import logged, logged_as
from memwarden.core import access, projects
from memwarden.core.facade.base import FacadeBase
from memwarden.core.models import Project, StateEntry


class ProjectsFacade(FacadeBase):
    @logged_as("add_project", project_arg="name")
    def add_project(self, name: str, description: str = "") -> Project:
        return projects.add(self.runtime, name, description)

    @logged
    def list_projects(self) -> list[Project]:
        return projects.list_projects(self.runtime)

    @logged_as("remove_project", project_arg="name")
    def remove_project(self, name: str) -> None:
        projects.remove(self.runtime, name)

    @logged
    def set_state(
        self, project: str, category: str, key: str, value: str, source: str = ""
    ) -> StateEntry:
        access.charge_write(self.write_limiter)
        return projects.state_set(self.runtime, project, category, key, value, source)

    @logged
    def get_state(
        self, project: str, category: str, key: str, *, include_tampered: bool = False
    ) -> StateEntry:
        """``include_tampered``: an admin's view (a tampered entry flagged, not refused)."""
        return projects.state_get(
            self.runtime, project, category, key, include_tampered=include_tampered
        )

    @logged
    def list_state(
        self, project: str, category: str | None = None, *, include_tampered: bool = False
    ) -> list[StateEntry]:
        return projects.state_list(
            self.runtime, project, category, include_tampered=include_tampered
        )

    @logged
    def delete_state(self, project: str, category: str, key: str) -> StateEntry:
        access.charge_write(self.write_limiter)
        return projects.state_delete(self.runtime, project, category, key)
