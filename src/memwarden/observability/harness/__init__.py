"""The retrieval harness: does recall still find what it should?

A fixtures file (``fixtures``) lists, per project, queries and what recall must return in the
top k; ``runner`` asks a recall callable (the harness never imports the domain) and checks
each case; ``records`` keeps every run, with its failing cases, in ``harness_runs``.
"""

from memwarden.observability.harness.fixtures import (
    DEFAULT_K,
    Fixtures,
    FixturesError,
    HarnessCase,
)
from memwarden.observability.harness.records import HarnessRun
from memwarden.observability.harness.runner import CaseResult, HarnessResult, Recall, RecalledHit

__all__ = [
    "DEFAULT_K",
    "CaseResult",
    "Fixtures",
    "FixturesError",
    "HarnessCase",
    "HarnessResult",
    "HarnessRun",
    "Recall",
    "RecalledHit",
]
