"""Projects: list, create, delete an empty one."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response
from pydantic import Field

from memwarden.api.models import Body, ProjectOut
from memwarden.core.models import Project
from memwarden.errors import NotFoundError
from memwarden.serving.auth import Reader, Writer
from memwarden.serving.errors import responses
from memwarden.serving.state import MW

router = APIRouter(prefix="/projects", tags=["projects"])

PROJECT_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"
ProjectName = Annotated[str, Path(min_length=1, max_length=100, description="The project's name")]


class CreateProject(Body):
    name: str = Field(pattern=PROJECT_PATTERN, description="1-100 letters, digits, '.', '_' or '-'")
    description: str = Field("", max_length=10_000)


@router.get("", response_model=list[ProjectOut], responses=responses(401, 403))
def list_projects(caller: Reader, mw: MW) -> list[Project]:
    return mw.list_projects()


@router.post("", status_code=201, response_model=ProjectOut, responses=responses(401, 403, 409))
def create_project(body: CreateProject, caller: Writer, mw: MW) -> Project:
    with caller.acting():
        return mw.add_project(body.name, body.description)


@router.get("/{project}", response_model=ProjectOut, responses=responses(401, 403, 404))
def get_project(project: ProjectName, caller: Reader, mw: MW) -> Project:
    for found in mw.list_projects():
        if found.name == project:
            return found
    raise NotFoundError(f"unknown project {project!r}")


@router.delete(
    "/{project}", status_code=204, response_class=Response, responses=responses(401, 403, 404, 409)
)
def delete_project(project: ProjectName, caller: Writer, mw: MW) -> Response:
    """Delete a project that holds nothing; one that still holds anything is refused (409)."""
    with caller.acting():
        mw.remove_project(project)
    return Response(status_code=204)
