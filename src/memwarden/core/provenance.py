"""Who is writing or reading, with what rights, and the trust tier that follows.

A ``Principal`` is the party behind a call: a person (the CLI, the dashboard, the library used
directly), an agent (an API key, an MCP client) or the system's own paths. Faces set it with
``acting_for``; the domain reads it with ``current``. A principal carries ``Scopes``: the
projects it may read and write, and whether it may write active memories, promote, reject,
erase or change project state. The library used directly is the operator: a person with every
scope, which is also the default.

Tiers, most trusted first: ``verified`` (a person wrote or approved it), ``agent`` (an agent
wrote it), ``extracted`` (the extraction rules found it), ``flagged`` (screening caught it).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from typing import Any

from memwarden.audit.actor import current_actor
from memwarden.errors import InvalidInputError

PERSON, AGENT, EXTRACTION, IMPORT = "person", "agent", "extraction", "import"
SOURCE_KINDS = (PERSON, AGENT, EXTRACTION, IMPORT)

VERIFIED, AGENT_TIER, EXTRACTED, FLAGGED = "verified", "agent", "extracted", "flagged"
TIERS = (VERIFIED, AGENT_TIER, EXTRACTED, FLAGGED)  # most trusted first
_RANK = {tier: len(TIERS) - index for index, tier in enumerate(TIERS)}

FLAGS = ("write_active", "promote", "reject", "erase", "state")


def rank(tier: str | None) -> int:
    """Higher is more trusted; an unknown tier ranks below flagged."""
    return _RANK.get(tier or "", 0)


def check_tier(tier: str) -> str:
    if tier not in TIERS:
        raise InvalidInputError(f"unknown tier {tier!r}: one of {', '.join(TIERS)}")
    return tier


@dataclass(frozen=True)
class Scopes:
    """What a principal may do. ``None`` projects means every project."""

    read_projects: frozenset[str] | None = None
    write_projects: frozenset[str] | None = None
    write: bool = True  # create candidates, capture, ingest, reinforce
    write_active: bool = False
    promote: bool = False
    reject: bool = False
    erase: bool = False
    state: bool = False

    @classmethod
    def everything(cls) -> Scopes:
        return cls(None, None, True, True, True, True, True, True)

    @classmethod
    def for_role(cls, role: str) -> Scopes:
        """A role's defaults: read reads; write writes candidates; admin does everything."""
        if role == "admin":
            return cls.everything()
        return cls(write=role == "write")

    def may_read(self, project: str) -> bool:
        return self.read_projects is None or project in self.read_projects

    def may_write(self, project: str) -> bool:
        return self.write and (self.write_projects is None or project in self.write_projects)

    def granted(self) -> list[str]:
        return [name for name in FLAGS if getattr(self, name)]

    def to_dict(self) -> dict[str, Any]:
        return {
            "read_projects": sorted(self.read_projects) if self.read_projects is not None else None,
            "write_projects": (
                sorted(self.write_projects) if self.write_projects is not None else None
            ),
            "write": self.write,
            **{name: getattr(self, name) for name in FLAGS},
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | None, role: str) -> Scopes:
        base = cls.for_role(role)
        if not text:
            return base
        data = json.loads(text)

        def projects(name: str) -> frozenset[str] | None:
            value = data.get(name)
            return frozenset(value) if value is not None else None

        return replace(
            base,
            read_projects=projects("read_projects"),
            write_projects=projects("write_projects"),
            write=bool(data.get("write", base.write)),
            **{name: bool(data.get(name, getattr(base, name))) for name in FLAGS},
        )


@dataclass(frozen=True)
class Principal:
    kind: str  # person or agent (the system's own paths act as the operator: a person)
    key: str | None = None  # the API key's name, if any
    scopes: Scopes = field(default_factory=Scopes.everything)

    @property
    def is_person(self) -> bool:
        return self.kind == PERSON


OPERATOR = Principal(PERSON)
_current: ContextVar[Principal] = ContextVar("memwarden_principal", default=OPERATOR)


def current() -> Principal:
    return _current.get()


@contextmanager
def acting_for(principal: Principal) -> Iterator[Principal]:
    """Every call inside the block is made for ``principal`` (its scopes are checked)."""
    token = _current.set(principal)
    try:
        yield principal
    finally:
        _current.reset(token)


@contextmanager
def as_operator() -> Iterator[Principal]:
    """The system's own paths (nightly, extraction) act with every scope."""
    with acting_for(OPERATOR) as principal:
        yield principal


@dataclass(frozen=True)
class Source:
    """Where a memory came from."""

    kind: str
    actor: str
    key: str | None

    @property
    def identity(self) -> str:
        """Who, for counting independent reinforcement: the key if any, else the actor."""
        return f"key:{self.key}" if self.key else f"actor:{self.actor}"


def current_source() -> Source:
    actor = current_actor()
    principal = current()
    if actor.startswith("extractor:"):
        # The rules wrote it, whoever started the run.
        return Source(EXTRACTION, actor, None)
    return Source(principal.kind, actor, principal.key)


def tier_of(kind: str, flagged: bool) -> str:
    if flagged:
        return FLAGGED
    return {PERSON: VERIFIED, EXTRACTION: EXTRACTED}.get(kind, AGENT_TIER)


def identity_of(kind: str | None, actor: str | None, key: str | None) -> str:
    return Source(kind or AGENT, actor or "", key).identity
