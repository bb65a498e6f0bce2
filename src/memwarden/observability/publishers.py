"""Sending signed checkpoints off the machine: a folder, an HTTP POST, the alert webhook, a
command. Each publisher retries with backoff; the caller records every outcome and raises a
fault (one critical alert per episode) for a publisher that keeps failing.

A folder publisher also guards the published history: before writing it reads the newest
checkpoint already there and hands it to ``check_previous`` (the caller checks the signature
and a consistency proof), so a store put back to an older state, or rewritten, is refused at
the next checkpoint instead of quietly publishing a fork.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import structlog

from memwarden.config import Settings
from memwarden.observability.alerts import emit_alert

log = structlog.get_logger(__name__)

LATEST = "latest.checkpoint"
CheckPrevious = Callable[[str], None]


class PublishError(Exception):
    """One attempt failed; ``final`` when retrying cannot help (a forked history)."""

    def __init__(self, message: str, *, final: bool = False) -> None:
        super().__init__(message)
        self.final = final


@dataclass(frozen=True)
class Published:
    publisher: str
    target: str
    ok: bool
    attempts: int
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class Publisher:
    name: str
    target: str
    send: Callable[[str, int], None]  # (signed note, tree size)


def configured(settings: Settings, check_previous: CheckPrevious) -> list[Publisher]:
    found: list[Publisher] = []
    if settings.checkpoint_publish_dir is not None:
        folder = settings.checkpoint_publish_dir
        found.append(
            Publisher(
                "folder",
                str(folder),
                lambda note, size: _to_folder(folder, note, size, check_previous),
            )
        )
    if settings.checkpoint_publish_url:
        url, timeout = settings.checkpoint_publish_url, settings.checkpoint_publish_timeout
        found.append(Publisher("http", url, lambda note, size: _to_url(url, note, timeout)))
    if settings.checkpoint_publish_webhook:
        hooked = bool(settings.alert_webhook.strip())
        found.append(
            Publisher(
                "webhook", "alert webhook", lambda note, size: _to_webhook(note, size, hooked)
            )
        )
    if settings.checkpoint_publish_command:
        command, timeout = settings.checkpoint_publish_command, settings.checkpoint_publish_timeout
        found.append(
            Publisher("command", command, lambda note, size: _to_command(command, note, timeout))
        )
    return found


def publish(publisher: Publisher, note: str, size: int, attempts: int, backoff: float) -> Published:
    """Try up to ``attempts`` times, waiting ``backoff`` × 2**n between tries."""
    error = ""
    for attempt in range(1, attempts + 1):
        try:
            publisher.send(note, size)
        except PublishError as exc:
            error = str(exc)
            if exc.final:
                break
        except OSError as exc:
            error = f"{exc.strerror or exc}{f': {exc.filename}' if exc.filename else ''}"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"
        else:
            log.info("checkpoint_published", publisher=publisher.name, size=size, attempt=attempt)
            return Published(publisher.name, publisher.target, True, attempt)
        log.warning(
            "checkpoint_publish_failed", publisher=publisher.name, attempt=attempt, error=error
        )
        if attempt < attempts:
            time.sleep(backoff * (2 ** (attempt - 1)))
    return Published(publisher.name, publisher.target, False, attempt, error)


def _to_folder(folder: Path, note: str, size: int, check_previous: CheckPrevious) -> None:
    if not folder.is_dir():
        raise PublishError(f"the folder {folder} does not exist (is the disk mounted?)")
    latest = folder / LATEST
    if latest.exists():
        try:
            check_previous(latest.read_text("utf-8"))
        except PublishError:
            raise
        except ValueError as exc:
            raise PublishError(f"the checkpoint published in {folder}: {exc}", final=True) from exc
    named = folder / f"checkpoint-{size:012d}-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.txt"
    _write_atomically(named, note)
    _write_atomically(latest, note)


def _write_atomically(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(temporary, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    finally:
        if temporary.exists():
            temporary.unlink()


def _to_url(url: str, note: str, timeout: float) -> None:
    response = httpx.post(
        url,
        content=note.encode("utf-8"),
        headers={"Content-Type": "text/plain; charset=utf-8"},
        timeout=timeout,
    )
    if not 200 <= response.status_code < 300:
        raise PublishError(f"{url} answered HTTP {response.status_code}")


def _to_webhook(note: str, size: int, hooked: bool) -> None:
    if not hooked:
        # The alert would reach the log and the alerts file only: nothing off the machine.
        raise PublishError(
            "MEMWARDEN_CHECKPOINT_PUBLISH_WEBHOOK is on but MEMWARDEN_ALERT_WEBHOOK is not set",
            final=True,
        )
    lines = note.split("\n")
    fingerprint = emit_alert(
        "info",
        "Ledger checkpoint",
        note,
        {"tree_size": size, "root": lines[2] if len(lines) > 2 else ""},
        fingerprint=f"checkpoint:{size}:{lines[2][:24] if len(lines) > 2 else ''}",
    )
    if not fingerprint:
        raise PublishError("the alert pipeline did not take the checkpoint (see the log)")


def _to_command(command: str, note: str, timeout: float) -> None:
    try:
        argv = shlex.split(command)
    except ValueError as exc:
        raise PublishError(f"the publish command cannot be parsed: {exc}", final=True) from exc
    try:
        done = subprocess.run(
            argv, input=note, text=True, capture_output=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise PublishError(f"the publish command ran over {timeout:g} s") from exc
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()
        raise PublishError(
            f"the publish command exited {done.returncode}" + (f": {tail[-1]}" if tail else "")
        )
