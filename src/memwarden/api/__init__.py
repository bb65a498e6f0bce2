"""The HTTP API (FastAPI): ``create_app(settings)``."""

from memwarden.api.app import create_app

__all__ = ["create_app"]
