"""Who is acting: a context variable threaded through every mutation path."""

from __future__ import annotations

import getpass
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from memwarden.errors import InvalidInputError

DEFAULT_ACTOR = "library"
MAX_ACTOR_LENGTH = 200

# The named actors of the automated paths, so callers never spell them twice.
HUMAN_TRIAGE = "human-triage"
AUTO_PROMOTE = "auto-promote"
CANDIDATE_EXPIRY = "candidate-expiry"
REINFORCEMENT = "reinforcement"
INTEGRITY_REPAIR = "integrity-repair"

_current_actor: ContextVar[str] = ContextVar("memwarden_actor", default=DEFAULT_ACTOR)


def current_actor() -> str:
    return _current_actor.get()


@contextmanager
def acting_as(actor: str) -> Iterator[str]:
    """Attribute every mutation inside the block to ``actor``."""
    actor = actor.strip()
    if not actor or len(actor) > MAX_ACTOR_LENGTH or not actor.isprintable():
        raise InvalidInputError("an actor is a printable name of 1 to 200 characters")
    token = _current_actor.set(actor)
    try:
        yield actor
    finally:
        _current_actor.reset(token)


def cli_actor() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"cli:{user}"
