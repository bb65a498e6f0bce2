"""Where memwarden's structured log goes, and what passes its level.

- As a library (imported by another program) memwarden never writes to stdout: unless the
  host configured structlog itself, memwarden's events are handed to the standard ``logging``
  module under the ``memwarden.*`` logger names, so the host's logging configuration decides
  where they go (with none, Python prints warnings and worse on stderr).
- The CLI and ``memwarden serve`` log on stderr, at ``MEMWARDEN_LOG_LEVEL`` (``serve``: INFO
  by default; other commands: ERROR, DEBUG with ``MEMWARDEN_DEBUG=1``), as console lines or,
  with ``MEMWARDEN_LOG_FORMAT=json``, as JSON lines.
- Alerts pass whatever the level: the log is the one alert sink that is always on, so an info
  alert reaches it even when everything else below ERROR is filtered out.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import MutableMapping
from typing import Any, Literal

import structlog

# Events that always pass the level filter: the alerts themselves.
ALERT_EVENTS = frozenset({"alert", "alert_test", "alert_resolved", "alert_severity_unknown"})
LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "warn": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
}
Format = Literal["console", "json"]


class LogSettingError(ValueError):
    """MEMWARDEN_LOG_LEVEL or MEMWARDEN_LOG_FORMAT holds a value memwarden does not know."""


def level_from_env(default: int) -> int:
    raw = os.environ.get("MEMWARDEN_LOG_LEVEL", "").strip().lower()
    if not raw:
        return default
    if raw not in LEVELS:
        raise LogSettingError(
            f"invalid setting MEMWARDEN_LOG_LEVEL: {raw!r} is not one of "
            "debug, info, warning, error, critical"
        )
    return LEVELS[raw]


def format_from_env() -> Format:
    raw = os.environ.get("MEMWARDEN_LOG_FORMAT", "").strip().lower() or "console"
    if raw not in ("console", "json"):
        raise LogSettingError(
            f"invalid setting MEMWARDEN_LOG_FORMAT: {raw!r} is not console or json"
        )
    return "json" if raw == "json" else "console"


class LevelFilter:
    """Drops events below ``level``, except alerts."""

    def __init__(self, level: int) -> None:
        self.level = level

    def __call__(
        self, _logger: Any, method: str, event: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        if event.get("event") in ALERT_EVENTS:
            return event
        if LEVELS.get(method, logging.ERROR if method == "exception" else logging.INFO) < (
            self.level
        ):
            raise structlog.DropEvent
        return event


class StderrLoggerFactory:
    """Log lines go to stderr (whatever it is at the time), so stdout stays the program's."""

    def __call__(self, *args: Any) -> structlog.PrintLogger:
        return structlog.PrintLogger(sys.stderr)


def safely(logger: Any, level: str, event: str, **fields: Any) -> None:
    """``logger.<level>(event, **fields)`` that never raises, for background threads: a log
    call that raises (a broken handler, a processor chain that does not fit the logger) would
    otherwise end the thread, and every later piece of its work would be lost without a word.
    What the log could not say goes to stderr, never stdout (an MCP server's protocol)."""
    try:
        getattr(logger, level)(event, **fields)
    except Exception as exc:  # noqa: BLE001 - the log itself failed: stderr is what is left
        try:
            sys.stderr.write(
                f"memwarden: the log failed ({type(exc).__name__}: {exc}); it was to say "
                f"{event} {fields}\n"
            )
        except Exception:  # noqa: BLE001 - stderr is gone too: nothing left to tell
            pass


def configure(level: int, fmt: Format = "console") -> None:
    """Log on stderr at ``level`` (alerts always), as console lines or JSON lines."""
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            LevelFilter(level),
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG),
        logger_factory=StderrLoggerFactory(),
        cache_logger_on_first_use=False,
    )


def library_default() -> None:
    """Unless the host configured structlog, route memwarden's events to ``logging``.

    structlog's own default prints to stdout, which corrupts the output of a program that
    embeds memwarden (an MCP server on stdio, a script printing JSON)."""
    if structlog.is_configured():
        return
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            structlog.stdlib.add_logger_name,
            structlog.stdlib.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            structlog.processors.KeyValueRenderer(key_order=["event"], sort_keys=True),
        ],
        wrapper_class=structlog.stdlib.BoundLogger,
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=False,
    )
