"""Storage faults as fault episodes: the listener the domain installs on ``db.faults``.

A fault of the machine (disk full, read-only files, a long lock, the database server gone)
raises a critical alert once per episode through the sinks that still work (the log and the
alerts file always; the database sink fails open), shows in ``/health`` and ``doctor``, and
the next operation that succeeds sends the resolved notice."""

from __future__ import annotations

from memwarden.db import faults as storage
from memwarden.observability.faults import active_faults, clear_fault, raise_fault


def _on_fault(kind: storage.Kind, detail: str, where: str) -> None:
    raise_fault(
        storage.PREFIX + kind.key,
        kind.title,
        f"{kind.advice}: {detail}",
        {"database": where},
        severity=kind.severity,
    )


def _on_healthy(kinds: tuple[storage.Kind, ...]) -> None:
    active = active_faults()
    if not active:
        return  # every commit comes here: the usual case builds nothing
    wanted = {storage.PREFIX + kind.key for kind in kinds}
    for fault in active:
        if fault.key in wanted:
            clear_fault(fault.key)


def install() -> None:
    storage.listen(_on_fault, _on_healthy)
