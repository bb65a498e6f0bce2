"""Project state: trusted key/value facts, ``(project, category, key) -> value, source``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import Field

from memwarden.api.models import Body, StateEntryOut
from memwarden.api.routes.projects import ProjectName
from memwarden.core.models import StateEntry
from memwarden.serving.auth import Reader, Writer
from memwarden.serving.errors import responses
from memwarden.serving.state import MW

router = APIRouter(prefix="/projects/{project}/state", tags=["project state"])

Part = Annotated[str, Query(min_length=1, max_length=200)]


class SetState(Body):
    category: str = Field(min_length=1, max_length=100)
    key: str = Field(min_length=1, max_length=200)
    value: str = Field(min_length=1)
    source: str = Field("", max_length=2000)


@router.get("", response_model=list[StateEntryOut], responses=responses(401, 403, 404))
def list_state(
    project: ProjectName,
    caller: Reader,
    mw: MW,
    category: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
    key: Annotated[str | None, Query(min_length=1, max_length=200, description="One entry")] = None,
) -> list[StateEntry]:
    """The project's state, by category and key; with ``category`` and ``key``, one entry."""
    # A tampered entry: refused (409) or left out of a list; an admin sees it flagged.
    admin = caller.is_admin
    if key is not None and category is not None:
        return [mw.get_state(project, category, key, include_tampered=admin)]
    entries = mw.list_state(project, category, include_tampered=admin)
    return [entry for entry in entries if key is None or entry.key == key]


@router.put("", response_model=StateEntryOut, responses=responses(401, 403, 404))
def set_state(project: ProjectName, body: SetState, caller: Writer, mw: MW) -> StateEntry:
    """Create or replace one entry."""
    with caller.acting():
        return mw.set_state(project, body.category, body.key, body.value, body.source)


@router.delete("", response_model=StateEntryOut, responses=responses(401, 403, 404))
def delete_state(
    project: ProjectName, category: Part, key: Part, caller: Writer, mw: MW
) -> StateEntry:
    """Delete one entry; returns it as it was."""
    with caller.acting():
        return mw.delete_state(project, category, key)
