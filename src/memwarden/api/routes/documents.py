"""Documents: ingest a posted text or Markdown document into source chunks."""

from __future__ import annotations

from fastapi import APIRouter, Response
from pydantic import Field

from memwarden.api.models import Body, IngestOut
from memwarden.core.ingest import FileOutcome
from memwarden.serving.auth import Writer
from memwarden.serving.errors import responses
from memwarden.serving.state import MW

router = APIRouter(prefix="/documents", tags=["documents"])


class IngestDocument(Body):
    project: str = Field(min_length=1, max_length=100)
    uri: str = Field(min_length=1, max_length=2000, description="Its path or name; the identity")
    text: str = Field(description="The document, as text or Markdown")
    title: str = Field("", max_length=500)


@router.post(
    "",
    status_code=201,
    response_model=IngestOut,
    responses={
        200: {"model": IngestOut, "description": "The document was updated or is unchanged"},
        **responses(401, 403, 404),
    },
)
def ingest_document(
    body: IngestDocument, caller: Writer, mw: MW, response: Response
) -> FileOutcome:
    """Chunk and store a document. Posting the same uri again replaces it (or changes nothing)."""
    with caller.acting():
        outcome = mw.ingest_text(body.project, body.uri, body.text, body.title)
    if outcome.status != "created":
        response.status_code = 200
    return outcome
