"""What the storage soaks share: their size (``MEMWARDEN_SOAK=1``: full size) and where their
figures go (``bench/results/soak-<name>.json``, beside the benchmarks')."""

from __future__ import annotations

import json
import os
import platform
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).resolve().parent.parent / "bench" / "results"


def full_size() -> bool:
    return os.environ.get("MEMWARDEN_SOAK", "").strip().lower() in {"1", "true", "yes"}


def write_figures(name: str, figures: dict[str, Any]) -> Path:
    """Write one soak's figures; a small run (the default test run's twin) says so."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"soak-{name}.json"
    body = {
        "name": name,
        "finished_at": datetime.now(UTC).isoformat(),
        "full_size": full_size(),
        "machine": platform.machine(),
        **figures,
    }
    path.write_text(json.dumps(body, indent=2, sort_keys=True) + "\n")
    return path
