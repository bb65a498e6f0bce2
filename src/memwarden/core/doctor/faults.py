"""Doctor checks for fault episodes: this process's, and those other processes report open.

The register (``observability.faults``) is per process, and ``doctor`` runs in a process of its
own: a fault a server met (a failing checkpoint, read records lost) is active only there, in
its ``/health``. Its alert's history row stays ``firing`` until the episode ends and names the
process (``pid``, ``host``), so the doctor lists it from the database too: as a warning, not a
failure, because the row can outlive the fault. A process killed with the episode open never
ends it; a resolve the database could not take (it was down: the fault itself) is not
replayed; two processes with the same fault at once share one row (repeats fold by
fingerprint), and the first to end it ends the row. The process's own ``/health`` is the
truth; ``memwarden alert resolve fault:KEY`` ends a row left behind.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterable

from sqlalchemy.exc import SQLAlchemyError

from memwarden.core.doctor import Check, CheckResult, DoctorContext
from memwarden.errors import first_line
from memwarden.observability.alerts.history import AlertRecord, firing_faults
from memwarden.observability.faults import FINGERPRINT_PREFIX, active_faults
from memwarden.observability.processes import alive


def check_faults(ctx: DoctorContext) -> Iterable[CheckResult]:
    """Faults this process met while checking, then the episodes other processes have open."""
    local = active_faults()
    for fault in local:
        yield CheckResult(f"fault:{fault.key}", "fail", f"{fault.title}: {fault.message}")
    if ctx.memwarden is None:
        return
    try:
        with ctx.memwarden.store.read() as conn:
            firing = firing_faults(conn, FINGERPRINT_PREFIX)
    except SQLAlchemyError as exc:
        yield CheckResult(
            "faults_elsewhere",
            "warn",
            f"not checked: other processes' faults are unreadable ({first_line(exc)})",
        )
        return
    seen = {fault.key for fault in local}
    for record in firing:
        key = str(record.context.get("fault") or record.fingerprint[len(FINGERPRINT_PREFIX) :])
        pid = record.context.get("pid")
        # This process's own are in its register; one it has ended may still await its
        # resolved row (the alert writer is a thread).
        if key in seen or pid == os.getpid():
            continue
        seen.add(key)
        yield _elsewhere(record, key, pid, record.context.get("host"))


def _elsewhere(record: AlertRecord, key: str, pid: object, host: object) -> CheckResult:
    since = record.created_at.strftime("%Y-%m-%d %H:%M:%S UTC")
    who = f"process {pid} on {host}" if pid is not None else "another process"
    data = {"pid": pid, "host": host, "since": record.created_at.isoformat()}
    if isinstance(pid, int) and host == socket.gethostname():
        state = (
            "which still runs: its /health has the fault's current state"
            if alive(pid)
            else "which has ended without ending the episode: it may have cleared"
        )
    else:
        state = "not ended there: that process's /health has the fault's current state"
    return CheckResult(
        f"fault:{key}",
        "warn",
        f"{record.title}: {record.message} (raised {since} by {who}, {state}; "
        f"`memwarden alert resolve {record.fingerprint}` ends a row left behind)",
        data,
    )


CHECKS: list[Check] = [check_faults]
