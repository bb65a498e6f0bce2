"""Prometheus metrics, as text."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from memwarden.api.metrics import Metrics

router = APIRouter(tags=["operations"])


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {
            "content": {"text/plain": {"schema": {"type": "string"}}},
            "description": "Prometheus text format",
        }
    },
)
async def metrics(request: Request) -> Response:
    """Open to everyone (no key): requests and latency per route and status, mutations by
    action, ledger write failures, and what other parts of memwarden add."""
    registry: Metrics = request.app.state.metrics
    body, content_type = registry.render()
    return Response(body, media_type=content_type)
