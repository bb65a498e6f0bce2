"""Settings: one object, built from the environment (prefix ``MEMWARDEN_``) and passed in."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Literal

import platformdirs
from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Where ``memwarden init --witness-file`` records a witness kept apart from the data folder.
WITNESS_POINTER = "witness.location"
DEFAULT_MEMORY_TYPES = ("identity", "preference", "project", "episodic", "knowledge", "adaptation")
# A PostgreSQL schema memwarden may live in: a plain lower-case identifier, so it never needs
# quoting in search_path and can never smuggle SQL; pg_* names belong to PostgreSQL itself.
PG_SCHEMA_NAME = re.compile(r"^(?!pg_)[a-z_][a-z0-9_]{0,62}$")


def _default_home() -> Path:
    return Path(platformdirs.user_data_dir("memwarden", appauthor=False))


class Settings(BaseSettings):
    """Every knob of memwarden. Never read at import time: build one and pass it in."""

    model_config = SettingsConfigDict(env_prefix="MEMWARDEN_", extra="ignore")

    home: Path = Field(default_factory=_default_home)
    database_url: str | None = None
    # PostgreSQL only: the schema the store lives in (created if missing), one per tenant.
    # Also accepted as ``?schema=NAME`` on the database URL; unset, the URL's own search_path.
    pg_schema: str | None = None
    sqlite_synchronous: Literal["OFF", "NORMAL", "FULL", "EXTRA"] = "NORMAL"
    sqlite_busy_timeout_ms: int = 30_000
    # PostgreSQL's counterparts, so a lock another session keeps or a server that never answers
    # fails as "database busy" / "database unreachable" (503, an alert) instead of hanging a
    # call for good. The lock wait is bounded only where the server, the role, the database and
    # the URL leave it unbounded; a URL's ``connect_timeout`` (or PGCONNECT_TIMEOUT, a service)
    # wins. 0 turns either off.
    pg_lock_timeout_ms: int = Field(default=30_000, ge=0, le=2_147_483_647)
    pg_connect_timeout_s: int = Field(default=10, ge=0, le=86_400)
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
    # The witness belongs apart from the database (another disk, another backup): a backup
    # of the data folder that carries its witness along cannot reveal its own rollback.
    ledger_witness_file: Path | None = Field(
        default=None,
        validation_alias=AliasChoices(
            "ledger_witness_file", "MEMWARDEN_WITNESS_FILE", "MEMWARDEN_LEDGER_WITNESS_FILE"
        ),
    )
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
    # Poisoning defences (issue 18): writes per key per minute (0: no limit); the share of a
    # recall's top results one source may fill; days to keep who-read-what rows.
    write_rate_per_minute: int = Field(default=600, ge=0)
    mcp_key: SecretStr | None = None  # the API key the MCP server acts with (its scopes)
    recall_source_share: float = Field(default=0.4, gt=0.0, le=1.0)
    reads_retention_days: int = Field(default=90, ge=1)
    candidate_expiry_days: int = Field(default=14, ge=0)
    # Alerts (observability/alerts): the file sink, the chat webhooks and their delivery.
    alert_log: Path | None = None
    alert_log_max_bytes: int = Field(default=10 * 1024 * 1024, ge=4096)
    alert_log_backups: int = Field(default=5, ge=1)
    alert_webhook: str = ""  # one or more URLs, comma-separated
    alert_webhook_secret: SecretStr | None = None
    alert_webhook_timeout: float = Field(default=8.0, gt=0)
    # Delivery retries on a time budget (seconds) with exponential backoff from ``backoff`` up
    # to ``backoff_max``; ``attempts`` optionally caps the counted failures too (unset: none).
    alert_webhook_attempts: int | None = Field(default=None, ge=1)
    alert_webhook_backoff: float = Field(default=1.0, ge=0)
    alert_webhook_backoff_max: float = Field(default=300.0, gt=0)
    alert_webhook_budget: float = Field(default=24 * 3600.0, gt=0)
    # The reserved project the last alert of each severity is mirrored into (state
    # alert/last_{severity}); empty: no mirror.
    alert_state_project: str = "memwarden"
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
    # Recall (core/recall, core/embedding): the embedder ("local" runs all-MiniLM-L6-v2 from its
    # pinned package offline; "openai" calls an OpenAI-compatible /embeddings endpoint; "none"
    # recalls by full text alone), the default mode, and the weight of meaning in hybrid ranking
    # (tuned on the tuning people of bench/_recall_eval_data.py; see docs/recall.md).
    embedder: Literal["local", "openai", "none"] = "local"
    embedder_url: str | None = None
    embedder_model: str = ""
    embedder_api_key: SecretStr | None = None
    embedder_timeout_s: float = Field(default=10.0, gt=0.0)
    recall_mode: Literal["hybrid", "text", "semantic"] = "hybrid"
    recall_semantic_weight: float = Field(default=0.8, ge=0.0, le=1.0)
    # How far back a recall that asks for superseded memories looks (days).
    recall_superseded_days: int = Field(default=30, ge=1)

    # Signed checkpoints (audit/tree, core/checkpoints): the Ed25519 key (apart from the
    # ledger's HMAC key), when to make one beyond the nightly run (every N ledger rows, every
    # T minutes; 0 = never), and where each is published (a folder, a URL, the alert webhook as
    # an info event, a command fed the checkpoint on stdin), with retries.
    checkpoint_key_file: Path | None = None
    checkpoint_every_rows: int = Field(default=0, ge=0)
    checkpoint_every_minutes: float = Field(default=0.0, ge=0)
    checkpoint_publish_dir: Path | None = None
    checkpoint_publish_url: str = ""
    checkpoint_publish_webhook: bool = False
    checkpoint_publish_command: str = ""
    checkpoint_publish_attempts: int = Field(default=3, ge=1)
    checkpoint_publish_backoff: float = Field(default=1.0, ge=0)
    checkpoint_publish_timeout: float = Field(default=10.0, gt=0)

    @field_validator("sqlite_synchronous", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.home / 'memwarden.db'}"

    @field_validator("pg_schema", mode="before")
    @classmethod
    def _schema_name(cls, value: object) -> object:
        if isinstance(value, str):
            value = value.strip() or None
        if value is not None and (not isinstance(value, str) or not PG_SCHEMA_NAME.match(value)):
            raise ValueError(
                "a PostgreSQL schema name is 1-63 lower-case letters, digits and underscores, "
                "not starting with a digit or pg_"
            )
        return value

    @property
    def resolved_pg_schema(self) -> str | None:
        """The schema from ``MEMWARDEN_PG_SCHEMA`` or, failing that, the URL's ``?schema=``."""
        if self.pg_schema:
            return self.pg_schema
        url = self.resolved_database_url
        if "?" not in url:
            return None
        from sqlalchemy.engine import make_url  # only when a URL carries a query

        try:
            found = make_url(url).query.get("schema")
        except Exception:  # noqa: BLE001 - a malformed URL is refused, clearly, by the engine
            return None
        name = found[-1] if isinstance(found, tuple) else found
        if name and not PG_SCHEMA_NAME.match(name):
            # Checked here, not only by the engine: the name also becomes a folder (data_home).
            from memwarden.errors import InvalidInputError

            raise InvalidInputError(
                f"invalid PostgreSQL schema name {name!r} in the database URL: 1-63 lower-case "
                "letters, digits and underscores, not starting with a digit or pg_"
            )
        return name or None

    @property
    def data_home(self) -> Path:
        """Where this store's own files live (ledger key, witness, alerts log, session
        secret): the home, or a folder of the home per PostgreSQL schema, so tenants that
        share a home never share a key or a witness."""
        schema = self.resolved_pg_schema
        return self.home / "schemas" / schema if schema else self.home

    @property
    def memory_types(self) -> tuple[str, ...]:
        extra = [t.strip().lower() for t in self.extra_memory_types.split(",") if t.strip()]
        return DEFAULT_MEMORY_TYPES + tuple(t for t in extra if t not in DEFAULT_MEMORY_TYPES)

    @property
    def resolved_verify_workers(self) -> int:
        """The processes ``audit verify`` walks a long chain on: as set, else one per core (at
        most 4), against a PostgreSQL server on this machine too. (Half the cores there, once
        the default, lost to two workers by 15-24% in four alternated sets of runs on 2 cores
        once a worker no longer loaded SQLAlchemy: docs/scaling.md, session 12.)"""
        if self.verify_workers:
            return self.verify_workers
        return min(os.cpu_count() or 1, 4)

    @property
    def resolved_ledger_key_file(self) -> Path:
        return self.ledger_key_file or self.data_home / "ledger.key"

    @property
    def resolved_witness_file(self) -> Path:
        """MEMWARDEN_WITNESS_FILE, else where ``memwarden init --witness-file`` put it (kept
        in the store's ``witness.location``), else ``ledger.head`` in the store's data folder."""
        if self.ledger_witness_file is not None:
            return self.ledger_witness_file
        try:
            recorded = (self.data_home / WITNESS_POINTER).read_text("utf-8").strip()
        except FileNotFoundError:
            recorded = ""
        return Path(recorded) if recorded else self.data_home / "ledger.head"

    @property
    def resolved_checkpoint_key_file(self) -> Path:
        return self.checkpoint_key_file or self.data_home / "checkpoint.key"

    @property
    def resolved_alert_log(self) -> Path:
        return self.alert_log or self.data_home / "alerts.log"
