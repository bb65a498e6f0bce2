"""The nightly pipeline (spec 2.5): memwarden's upkeep and self-check, once a night.

In order, each step isolated: extract candidates from new interactions, promote reinforced
candidates, expire stale ones, run the retrieval harness, the alert checks, the integrity scan,
the retention sweeps. A face like the CLI and the API: it drives the ``Memwarden`` facade.
``runner.run_nightly`` runs it (from ``memwarden nightly`` or cron); ``scheduler`` runs it from
the server when ``MEMWARDEN_NIGHTLY_CRON`` is set.
"""

from memwarden.nightly.runner import run_nightly
from memwarden.nightly.steps import STEP_NAMES, RunContext, StepFailed, StepFn, StepSkipped

__all__ = ["STEP_NAMES", "RunContext", "StepFailed", "StepFn", "StepSkipped", "run_nightly"]
