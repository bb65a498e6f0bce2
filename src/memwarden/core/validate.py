"""Checks on what callers hand the domain, each failing with a message a person can act on."""

from __future__ import annotations

import math
import re

from sqlalchemy import Connection, select

from memwarden.config import Settings
from memwarden.db import schema
from memwarden.errors import InvalidInputError, NotFoundError

PROJECT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
MAX_NOTE_CHARS = 2000
MAX_KEY_CHARS = 200
MAX_CATEGORY_CHARS = 100  # project_state.category
MAX_SOURCE_CHARS = 2000
# ledger.entity_id: a state entry's is the JSON of (project, category, key), quotes and
# escapes included. Past it PostgreSQL refused the ledger row, and the entry was written
# unrecorded (fail-open), with a gap no scan replays.
MAX_ENTITY_ID_CHARS = 400


def content(settings: Settings, text: str, what: str = "content") -> str:
    if not isinstance(text, str) or not text.strip():
        raise InvalidInputError(f"{what} is empty")
    if "\x00" in text:
        raise InvalidInputError(f"{what} contains a NUL character")
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError as exc:
        raise InvalidInputError(f"{what} is not valid Unicode text (lone surrogate)") from exc
    if size > settings.max_content_bytes:
        raise InvalidInputError(
            f"{what} is {size} bytes, over the maximum of {settings.max_content_bytes} "
            "(MEMWARDEN_MAX_CONTENT_BYTES)"
        )
    return text.strip()


def memory_type(settings: Settings, value: str) -> str:
    normalised = value.strip().lower() if isinstance(value, str) else ""
    if normalised not in settings.memory_types:
        raise InvalidInputError(
            f"unknown memory type {value!r}: use one of {', '.join(settings.memory_types)} "
            "(more with MEMWARDEN_EXTRA_MEMORY_TYPES)"
        )
    return normalised


def confidence(value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidInputError(f"confidence must be a number between 0 and 1, not {value!r}")
    if not 0.0 <= float(value) <= 1.0:
        raise InvalidInputError(f"confidence must be between 0 and 1, not {value}")
    # -0.0 becomes 0.0: SQLite stores it as 0, so a row MAC made over -0.0 would never match
    # the row read back, and the memory would read as tampered from its first write.
    return float(value) + 0.0


def note(value: str | None) -> str | None:
    if value is None:
        return None
    if len(value) > MAX_NOTE_CHARS:
        raise InvalidInputError(f"a note is at most {MAX_NOTE_CHARS} characters")
    return value


def project_name(name: str) -> str:
    if not isinstance(name, str) or not PROJECT_NAME.match(name):
        raise InvalidInputError(
            f"invalid project name {name!r}: 1-100 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return name


def key_part(value: str, what: str, limit: int = MAX_KEY_CHARS) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInputError(f"{what} is empty")
    if len(value) > limit or not value.isprintable():
        raise InvalidInputError(f"{what} must be printable and at most {limit} characters")
    return value.strip()


def state_source(value: str) -> str:
    if not isinstance(value, str) or len(value) > MAX_SOURCE_CHARS:
        raise InvalidInputError(f"a source is at most {MAX_SOURCE_CHARS} characters")
    return value


def recordable_id(entity_id: str, what: str) -> str:
    """An entity id the ledger can hold (``MAX_ENTITY_ID_CHARS``), or a clear refusal."""
    if len(entity_id) > MAX_ENTITY_ID_CHARS:
        raise InvalidInputError(
            f"{what} is too long to record: {len(entity_id)} characters as the ledger writes "
            f"it (quotes and escapes included), at most {MAX_ENTITY_ID_CHARS}; shorten it"
        )
    return entity_id


def project_exists(conn: Connection, name: str) -> str:
    found = conn.execute(
        select(schema.projects.c.name).where(schema.projects.c.name == name)
    ).scalar_one_or_none()
    if found is None:
        raise unknown_project(name)
    return name


def could_be_project(name: str) -> str:
    """``name``, or NotFoundError when no project could ever bear it.

    For paths that let a foreign key find the project instead of a lookup: a name that breaks
    the naming rules (too long for the column, say) must not reach the database as a value."""
    if not isinstance(name, str) or not PROJECT_NAME.match(name):
        raise unknown_project(name)
    return name


def unknown_project(name: str) -> NotFoundError:
    return NotFoundError(
        f"unknown project {name!r}: create it first with `memwarden project add {name}`"
    )
