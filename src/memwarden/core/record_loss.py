"""Audit records lost in the background, as fault episodes.

The operation log and the read records (who was served which memory) are written off the
caller's path and fail open: an operation never fails because its record could not be kept.
Before, such a loss was a log line and a counter. Now each burst of failures is a fault an
operator sees: one alert when it starts, ``/health`` of the process that met it degraded
while it lasts, a resolved notice when a later write of that log succeeds (of any log of that
kind in the process: one reopened too). A storage fault (a full disk, the server gone) is the
storage fault's own episode already (``core/storage_faults.py``), which names the cause; it is
not announced twice."""

from __future__ import annotations

from memwarden.audit.oplog.failures import BurstReporter
from memwarden.db.faults import StorageUnavailableError
from memwarden.observability.faults import clear_fault, raise_fault

OPLOG_FAULT = "audit:oplog_records_lost"
READS_FAULT = "audit:read_records_lost"


def watch(reporter: BurstReporter, key: str, title: str, what: str) -> None:
    """Make ``reporter``'s bursts the fault ``key``."""

    def failed(exc: BaseException, lost: int) -> None:
        if isinstance(exc, StorageUnavailableError):
            return
        detail = str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
        raise_fault(
            key,
            title,
            f"{what} could not be written ({type(exc).__name__}: {detail}); {lost} lost so far "
            "in this episode. Operations still succeed; their records are missing.",
            {"lost": lost},
        )

    def recovered() -> None:
        clear_fault(key)

    reporter.on_failure = failed
    reporter.on_recovered = recovered
