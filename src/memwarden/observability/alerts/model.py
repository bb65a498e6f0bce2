"""What an alert is: severity, title, message, context and the fingerprint that names the problem.

Every text is made safe to store and to send here, once: NUL characters (PostgreSQL text
cannot hold them) and unpaired surrogates (UTF-8 cannot encode them) are replaced, a title is
one line, and over-long texts are cut with an ellipsis that says how much was cut.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, cast

SEVERITIES = ("info", "warning", "critical")
Severity = Literal["info", "warning", "critical"]

MAX_TITLE_CHARS = 500
MAX_MESSAGE_CHARS = 64 * 1024
MAX_CONTEXT_CHARS = 16 * 1024
REPLACEMENT = "\ufffd"
EMIT_ID = re.compile(r"[0-9a-f]{32}")


# Emit ids need to be unique, not secret: 128 bits from a generator seeded once per process
# from the OS (and again in a forked child, which would otherwise repeat its parent's ids).
# ``uuid4`` read os.urandom on every alert: a system call that hands the interpreter lock to
# any busy thread (the alert writer committing a batch), and the caller then waited out the
# switch interval (5 ms) to get it back, which was the emit p99 with a busy writer.
_ids = random.Random(os.urandom(32))


def _reseed() -> None:
    _ids.seed(os.urandom(32))


os.register_at_fork(after_in_child=_reseed)


def new_emit_id() -> str:
    """A unique id for one raised alert (it names the alert in the file and in the database)."""
    return f"{_ids.getrandbits(128):032x}"


@dataclass(frozen=True)
class Alert:
    """One emitted alert, normalised. ``fingerprint`` groups the repeats of one problem."""

    severity: Severity
    title: str
    message: str
    context: dict[str, Any]
    fingerprint: str
    at: datetime = field(default_factory=lambda: datetime.now(UTC))
    requested_severity: str | None = None  # set when an unknown severity fell back to info
    # Names this one raising of the alert: its line in the alerts file carries it, and the
    # transaction that stores the alert records it, so a start-up replays exactly the lines
    # that never reached the database (see ``replay``).
    emit_id: str = field(default_factory=new_emit_id)

    def context_json(self) -> str:
        return json.dumps(self.context, ensure_ascii=True, sort_keys=True)


def clean_text(value: object) -> str:
    """Any value as a string that UTF-8 and both databases can hold."""
    text = value if isinstance(value, str) else _to_str(value)
    if "\x00" in text:
        text = text.replace("\x00", REPLACEMENT)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = "".join(REPLACEMENT if 0xD800 <= ord(c) <= 0xDFFF else c for c in text)
    return text


def _to_str(value: object) -> str:
    try:
        return str(value)
    except Exception:  # noqa: BLE001 - a broken __str__ must not stop an alert
        return f"<unprintable {type(value).__name__}>"


def one_line(text: str) -> str:
    """A title: control characters (newlines included) become spaces, runs of blanks one."""
    return " ".join("".join(" " if _is_control(c) else c for c in text).split())


def _is_control(char: str) -> bool:
    code = ord(char)
    return code < 0x20 or 0x7F <= code < 0xA0 or code in (0x2028, 0x2029)


def truncate(text: str, limit: int) -> str:
    """At most ``limit`` characters, ending in an ellipsis when cut."""
    if len(text) <= limit:
        return text
    if limit <= 1:
        return "…"[:limit]
    return text[: limit - 1] + "…"


def _cap(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    note = f"… [{len(text) - limit} more characters cut]"
    return text[: limit - len(note)] + note


def jsonable(value: Any, depth: int = 0) -> Any:
    """A JSON-safe copy of a context value: anything JSON cannot hold becomes its ``str``."""
    if depth > 8:
        return clean_text(repr(value))
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, dict):
        return {clean_text(k): jsonable(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = sorted(value, key=repr) if isinstance(value, set | frozenset) else value
        return [jsonable(v, depth + 1) for v in items]
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        return clean_text(value.decode("utf-8", "replace"))
    return clean_text(value)


def fingerprint(
    severity: str, title: str, context: dict[str, Any] | None = None, keys: tuple[str, ...] = ()
) -> str:
    """The problem's name: severity, title and the context values under ``keys``."""
    ctx = context or {}
    identity = {key: jsonable(ctx.get(key)) for key in sorted(keys)}
    body = json.dumps([severity, title, identity], ensure_ascii=True, sort_keys=True)
    return hashlib.sha256(body.encode("ascii")).hexdigest()[:32]


def severity_of(value: object) -> tuple[Severity, str | None]:
    """The severity an alert is raised at, and the requested value when it was not one of
    ``SEVERITIES`` (it then falls back to info, and the alert says so)."""
    level = clean_text(value).strip().lower() if value is not None else ""
    if level in SEVERITIES:
        return cast(Severity, level), None
    return "info", clean_text(value)[:100]


def build(
    severity: object,
    title: object,
    message: object,
    context: dict[str, Any] | None = None,
    *,
    fingerprint_keys: tuple[str, ...] | list[str] = (),
    fingerprint_override: str | None = None,
) -> Alert:
    """Normalise one call of ``emit_alert``. Never raises on odd input."""
    level, requested = severity_of(severity)
    clean_title = truncate(one_line(clean_text(title)), MAX_TITLE_CHARS) or "(untitled)"
    clean_message = _cap(clean_text(message), MAX_MESSAGE_CHARS)
    ctx = jsonable(context) if isinstance(context, dict) else {}
    if context is not None and not isinstance(context, dict):
        ctx = {"context": jsonable(context)}
    if len(json.dumps(ctx, ensure_ascii=True)) > MAX_CONTEXT_CHARS:
        ctx = {"context_truncated": _cap(json.dumps(ctx, ensure_ascii=False), MAX_CONTEXT_CHARS)}
    if requested is not None:
        ctx["requested_severity"] = requested
        clean_message += f"\n(unknown severity {requested!r}: sent as info)"
    print_keys = tuple(str(k) for k in fingerprint_keys)
    fp = fingerprint_override or fingerprint(level, clean_title, ctx, print_keys)
    return Alert(
        severity=level,
        title=clean_title,
        message=clean_message,
        context=ctx,
        fingerprint=clean_text(fp)[:64],
        requested_severity=requested,
    )


def restore(
    severity: object,
    title: object,
    message: object,
    context: object,
    fingerprint: object,
    at: datetime,
    emit_id: str,
) -> Alert | None:
    """An alert read back from its line in the alerts file, normalised again (the file may
    have been edited); None when it does not hold what ``build`` wrote."""
    if severity not in SEVERITIES or not isinstance(context, dict):
        return None
    if not (isinstance(title, str) and isinstance(message, str) and isinstance(fingerprint, str)):
        return None
    if at.tzinfo is None or not EMIT_ID.fullmatch(emit_id):
        return None
    ctx = jsonable(context)
    if len(json.dumps(ctx, ensure_ascii=True)) > MAX_CONTEXT_CHARS:
        ctx = {"context_truncated": _cap(json.dumps(ctx, ensure_ascii=False), MAX_CONTEXT_CHARS)}
    requested = ctx.get("requested_severity")
    return Alert(
        severity=cast(Severity, severity),
        title=truncate(one_line(clean_text(title)), MAX_TITLE_CHARS) or "(untitled)",
        message=_cap(clean_text(message), MAX_MESSAGE_CHARS),
        context=ctx,
        fingerprint=clean_text(fingerprint)[:64],
        at=at,
        requested_severity=requested if isinstance(requested, str) else None,
        emit_id=emit_id,
    )
