"""Who is looking at the dashboard: the API key that signed in (or the open loopback user),
its role, and the session that carries it."""

from __future__ import annotations

from dataclasses import dataclass

from memwarden.core.keys import ROLES
from memwarden.serving.auth import OPEN_ACTOR, Caller
from memwarden.web.sessions import Session


@dataclass(frozen=True)
class Viewer:
    caller: Caller  # the API's caller: the actor every mutation is recorded under
    session: Session
    csrf: str  # the token every form of this session carries
    fresh: bool = False  # the session is new: the response must set its cookie

    @property
    def role(self) -> str:
        return self.caller.role

    @property
    def actor(self) -> str:
        return self.caller.actor

    @property
    def name(self) -> str:
        return self.caller.key_name or "open (no API keys, loopback only)"

    @property
    def open(self) -> bool:
        return self.caller.actor == OPEN_ACTOR

    def can(self, role: str) -> bool:
        return ROLES.index(self.caller.role) >= ROLES.index(role)
