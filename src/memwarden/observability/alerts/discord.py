"""Discord embeds, kept inside Discord's limits (counted in UTF-16 units, as Discord counts).

Limits: title 256, description 4096, 25 fields of name 256 and value 1024, footer 2048, and
6000 for all of them together. A text over its limit is cut and ends in an ellipsis; fields
that do not fit are dropped and the last one says how many.
"""

from __future__ import annotations

import json
from typing import Any

from memwarden.observability.alerts.notice import Notice

TITLE, DESCRIPTION, FOOTER = 256, 4096, 2048
FIELD_NAME, FIELD_VALUE, FIELDS, TOTAL = 256, 1024, 25, 6000
ELLIPSIS = "…"


def units(text: str) -> int:
    """Length in UTF-16 code units."""
    return len(text) + sum(1 for c in text if ord(c) > 0xFFFF)


def clip(text: str, limit: int) -> str:
    """At most ``limit`` UTF-16 units, never splitting a character; ``…`` when cut."""
    if units(text) <= limit:
        return text
    if limit < 1:
        return ""
    budget, out = limit - 1, []
    for char in text:
        width = 2 if ord(char) > 0xFFFF else 1
        if width > budget:
            break
        budget -= width
        out.append(char)
    return "".join(out) + ELLIPSIS


def _value(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if text.strip() else "—"


def embed(notice: Notice) -> dict[str, Any]:
    title = clip(notice.headline, TITLE)
    footer = clip(f"memwarden · {notice.severity} · {notice.fingerprint[:12]}", FOOTER)
    left = TOTAL - units(title) - units(footer)
    description = clip(notice.message or "—", min(DESCRIPTION, left))
    left -= units(description)
    pairs: list[tuple[str, str]] = []
    folded = notice.folded_line()
    if folded:
        pairs.append(("Folded repeats", folded))
    pairs.extend((str(k), _value(v)) for k, v in notice.context.items())
    fields: list[dict[str, Any]] = []
    for index, (raw_name, raw_value) in enumerate(pairs):
        name = clip(raw_name.strip() or "—", FIELD_NAME)
        value = clip(raw_value, FIELD_VALUE)
        rest = len(pairs) - index
        last_slot = len(fields) == FIELDS - 1 and rest > 1
        if not last_slot and units(name) + units(value) <= left:
            fields.append({"name": name, "value": value, "inline": units(value) <= 40})
            left -= units(name) + units(value)
            continue
        if units(name) + 8 <= left and not last_slot:
            value = clip(raw_value, min(FIELD_VALUE, left - units(name)))
            fields.append({"name": name, "value": value, "inline": False})
            left -= units(name) + units(value)
            rest -= 1
        if rest > 0:
            note_name, note_value = "…", f"{rest} more context entries left out"
            if units(note_name) + units(note_value) <= left:
                fields.append({"name": note_name, "value": note_value, "inline": False})
        break
    return {
        "title": title,
        "description": description,
        "color": notice.colour,
        "fields": fields,
        "footer": {"text": footer},
        "timestamp": notice.at.isoformat(),
    }


def payload(notice: Notice) -> dict[str, Any]:
    """The whole webhook body. ``allowed_mentions`` keeps alert text from pinging anyone."""
    return {
        "username": "memwarden",
        "embeds": [embed(notice)],
        "allowed_mentions": {"parse": []},
    }
