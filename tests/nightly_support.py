"""Helpers the harness and nightly tests share: the sample data, fixtures files, alerts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cli_support import Cli
from memwarden import Memwarden, Settings
from memwarden.observability.alerts import AlertRecord


def cli_for(settings: Settings, **env: str) -> Cli:
    return Cli(settings.home, settings.database_url, **env)


def load_sample(settings: Settings) -> Cli:
    """The database of ``settings`` with the bundled sample loaded, as `memwarden demo` does."""
    cli = cli_for(settings)
    cli.run("demo", "--json")
    return cli


def write_fixtures(path: Path, data: Any) -> Path:
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def alerts_titled(mw: Memwarden, text: str, severity: str | None = None) -> list[AlertRecord]:
    """Alerts (committed to the table) whose title contains ``text``."""
    assert mw.alerts.flush(10.0)
    return [a for a in mw.alerts.history(severity=severity, limit=200) if text in a.title]
