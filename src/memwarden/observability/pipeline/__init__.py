"""The nightly pipeline's records and its run lock (the pipeline itself is ``memwarden.nightly``).

``records``: each run and its steps (status, duration, counts, error) for ``nightly history``
and the dashboard. ``lock``: two runs on one database never overlap.
"""

from memwarden.observability.pipeline.lock import RunInProgressError, RunLease
from memwarden.observability.pipeline.records import (
    STEP_STATUSES,
    NightlyRun,
    StepRecord,
    StepStatus,
)

__all__ = [
    "STEP_STATUSES",
    "NightlyRun",
    "RunInProgressError",
    "RunLease",
    "StepRecord",
    "StepStatus",
]
