"""What the current principal may do: scope checks and the per-key write rate.

Every check reads ``provenance.current()``, so the HTTP API, the MCP server and the dashboard
are held to the same rules by the domain itself. A person (the CLI, the library, the
dashboard) is trusted to promote and to write active memories, within the scopes of the key
they signed in with; an agent only within its key's scopes, and never over its own writing.
"""

from __future__ import annotations

import math
import threading
import time

from memwarden.core import provenance
from memwarden.core.models import Memory
from memwarden.core.provenance import Principal
from memwarden.errors import ForbiddenError, RateLimitedError


def _who(principal: Principal) -> str:
    return f"the key {principal.key!r}" if principal.key else f"this {principal.kind}"


def _need(flag: str, doing: str) -> Principal:
    principal = provenance.current()
    if not getattr(principal.scopes, flag):
        raise ForbiddenError(
            f"{_who(principal)} may not {doing}: it needs the {flag} scope, which an admin "
            f"grants with `memwarden key grant NAME --scope {flag}`"
        )
    return principal


def check_read(project: str) -> None:
    principal = provenance.current()
    if not principal.scopes.may_read(project):
        raise ForbiddenError(f"{_who(principal)} may not read project {project!r}")


def readable(projects: list[str]) -> list[str]:
    scopes = provenance.current().scopes
    return [name for name in projects if scopes.may_read(name)]


def read_limited() -> frozenset[str] | None:
    """The projects the principal may read, or None for all."""
    return provenance.current().scopes.read_projects


def check_write(project: str) -> None:
    principal = provenance.current()
    if not principal.scopes.may_write(project):
        raise ForbiddenError(f"{_who(principal)} may not write to project {project!r}")


def check_status(status: str) -> None:
    """Writing an active memory needs the write_active scope."""
    if status == "active":
        _need("write_active", "write an active memory (write a candidate for triage instead)")


def check_state(project: str) -> None:
    check_write(project)
    _need("state", "change project state")


def check_erase() -> None:
    _need("erase", "erase a memory")


def check_operation(operation: str, memory: Memory) -> None:
    """The scope a lifecycle move needs, and the rule that nobody promotes their own writing."""
    check_write(memory.project)
    if operation == "promote":
        principal = _need("promote", "promote a memory")
        if memory.tier == provenance.FLAGGED and not principal.is_person:
            raise ForbiddenError(
                f"memory {memory.id} was flagged by screening: only a person may promote it"
            )
        if own_writing(principal, memory):
            raise ForbiddenError(
                f"memory {memory.id} was written by {_who(principal)}: nobody promotes their "
                "own writing; another key or a person must"
            )
    elif operation == "reject":
        _need("reject", "reject a memory")
    elif operation in ("invalidate", "supersede", "revert"):
        _need("write_active", f"{operation} a memory")


def check_update(memory: Memory) -> None:
    check_write(memory.project)
    if memory.status == "active":
        principal = _need("write_active", "change an active memory")
        if not principal.is_person and provenance.rank(memory.tier) > provenance.rank("agent"):
            raise ForbiddenError(
                f"memory {memory.id} is {memory.tier}: an agent cannot change it; supersede it "
                "with new content to propose the change for triage"
            )


def own_writing(principal: Principal, memory: Memory) -> bool:
    """Whether the memory was written with this key, through any face (a key signed in to
    the dashboard is still that key). A person without a key (the CLI, the library) may
    promote their own candidates: their writing is verified anyway."""
    return principal.key is not None and memory.source_key == principal.key


def outranks(memory: Memory) -> bool:
    """Whether the memory is more trusted than what the current agent may replace it with."""
    principal = provenance.current()
    return not principal.is_person and provenance.rank(memory.tier) > provenance.rank("agent")


class WriteLimiter:
    """A token bucket per key: ``rate`` writes a minute, bursting to ``rate``."""

    def __init__(self, rate_per_minute: int) -> None:
        self.rate = rate_per_minute
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key: str) -> None:
        if self.rate <= 0:
            return
        per_second = self.rate / 60.0
        now = time.monotonic()
        with self._lock:
            tokens, then = self._buckets.get(key, (float(self.rate), now))
            tokens = min(float(self.rate), tokens + (now - then) * per_second)
            if tokens < 1.0:
                self._buckets[key] = (tokens, now)
                wait = max(1, math.ceil((1.0 - tokens) / per_second))
                raise RateLimitedError(
                    f"the key {key!r} wrote more than {self.rate} times a minute: "
                    f"retry in {wait} s",
                    wait,
                )
            self._buckets[key] = (tokens - 1.0, now)
            if len(self._buckets) > 10_000:  # forget idle keys rather than grow without end
                self._buckets = {key: self._buckets[key]}


def charge_write(limiter: WriteLimiter) -> None:
    """Count one write against the current agent's key (people and the system are not
    limited)."""
    principal = provenance.current()
    if principal.is_person or principal.key is None:
        return
    limiter.take(principal.key)
