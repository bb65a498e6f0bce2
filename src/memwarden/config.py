"""Settings: one object, built from the environment (prefix ``MEMWARDEN_``) and passed in."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import platformdirs
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_MEMORY_TYPES = ("identity", "preference", "project", "episodic", "knowledge", "adaptation")


def _default_home() -> Path:
    return Path(platformdirs.user_data_dir("memwarden", appauthor=False))


class Settings(BaseSettings):
    """Every knob of memwarden. Never read at import time: build one and pass it in."""

    model_config = SettingsConfigDict(env_prefix="MEMWARDEN_", extra="ignore")

    home: Path = Field(default_factory=_default_home)
    database_url: str | None = None
    sqlite_synchronous: Literal["OFF", "NORMAL", "FULL", "EXTRA"] = "NORMAL"
    sqlite_busy_timeout_ms: int = 30_000
    # Which SQLite library (db/driver.py): sqlean-py's when installed, else Python's own at or
    # above the tested floor; "sqlean" or "stdlib" insist on one.
    sqlite_driver: Literal["auto", "sqlean", "stdlib"] = "auto"
    # Erase (core/erasure): on PostgreSQL the background scrub rewrites the tables an erase
    # touched while they hold at most this many MiB together (a rewrite locks its table).
    erase_rewrite_max_mb: int = Field(default=8, ge=0)
    extra_memory_types: str = ""
    max_content_bytes: int = 64 * 1024
    chunk_target_chars: int = 1200
    ledger_strict: bool = False
    ledger_key_file: Path | None = None
    ledger_witness_file: Path | None = None
    # Processes a long `audit verify` (and a full integrity scan) walks the chain on: 0 picks
    # one per core, up to 4; 1 walks it in the calling process.
    verify_workers: int = Field(default=0, ge=0, le=64)
    debug: bool = False
    # Capture, extraction and the automatic moves of candidates (core/capture, core/extraction,
    # core/automation).
    max_interaction_bytes: int = Field(default=256 * 1024, ge=1)
    extractor: Literal["rules", "llm"] = "rules"
    extract_batch_size: int = Field(default=200, ge=1, le=10_000)
    reinforce_similarity: float = Field(default=0.8, gt=0.0, le=1.0)
    llm_url: str | None = None
    llm_model: str = ""
    llm_api_key: SecretStr | None = None
    llm_timeout_s: float = Field(default=30.0, gt=0.0)
    auto_promote_min_reinforcements: int = Field(default=3, ge=1)
    auto_promote_min_confidence: float = Field(default=0.6, ge=0.0, le=1.0)
    candidate_expiry_days: int = Field(default=14, ge=0)
    # Alerts (observability/alerts): the file sink, the chat webhooks and their delivery.
    alert_log: Path | None = None
    alert_log_max_bytes: int = Field(default=10 * 1024 * 1024, ge=4096)
    alert_log_backups: int = Field(default=5, ge=1)
    alert_webhook: str = ""  # one or more URLs, comma-separated
    alert_webhook_secret: SecretStr | None = None
    alert_webhook_timeout: float = Field(default=8.0, gt=0)
    alert_webhook_attempts: int = Field(default=5, ge=1)
    alert_webhook_backoff: float = Field(default=1.0, ge=0)
    alert_throttle_seconds: float = Field(default=600.0, ge=0)
    # Operation log (audit/oplog): the actions to log (comma list or *; empty logs nothing),
    # raw text or shapes only, retention in days (-1 keeps everything), queue and exit bounds.
    oplog_actions: str = ""
    oplog_raw: bool = False
    oplog_retention_days: int = Field(default=-1, ge=-1)
    oplog_queue_size: int = Field(default=10_000, ge=1)
    oplog_flush_timeout_s: float = Field(default=5.0, ge=0)
    # The integrity scan (observability/integrity): on PostgreSQL, whether the scan may run
    # CREATE EXTENSION amcheck itself when the extension is missing (otherwise: a recorded skip).
    integrity_amcheck_create: bool = False
    # The retrieval harness and the nightly pipeline (observability/harness, nightly/): the
    # fixtures file (default: the bundled sample's), the alert thresholds of the nightly checks,
    # the server's schedule (crontab syntax; empty: no scheduled run) and when a SQLite run lock
    # whose holder stopped beating counts as abandoned.
    harness_fixtures: Path | None = None
    harness_min_pass_rate: float = Field(default=0.85, ge=0.0, le=1.0)
    candidate_queue_max: int = Field(default=200, ge=0)
    nightly_cron: str = ""
    nightly_lock_stale_minutes: float = Field(default=10.0, gt=0)

    @field_validator("sqlite_synchronous", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.home / 'memwarden.db'}"

    @property
    def memory_types(self) -> tuple[str, ...]:
        extra = [t.strip().lower() for t in self.extra_memory_types.split(",") if t.strip()]
        return DEFAULT_MEMORY_TYPES + tuple(t for t in extra if t not in DEFAULT_MEMORY_TYPES)

    @property
    def resolved_verify_workers(self) -> int:
        return self.verify_workers or min(os.cpu_count() or 1, 4)

    @property
    def resolved_ledger_key_file(self) -> Path:
        return self.ledger_key_file or self.home / "ledger.key"

    @property
    def resolved_witness_file(self) -> Path:
        return self.ledger_witness_file or self.home / "ledger.head"

    @property
    def resolved_alert_log(self) -> Path:
        return self.alert_log or self.home / "alerts.log"
