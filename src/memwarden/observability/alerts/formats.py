"""Webhook bodies: Discord embeds, Slack blocks, or generic JSON signed with HMAC-SHA256.

Every attempt carries the delivery's stable id in ``X-Memwarden-Delivery-Id`` (and the generic
body in ``delivery_uid``): delivery is at least once, so a receiver drops repeats by it.

Generic receivers check ``X-Memwarden-Signature: sha256=<hex>``, the HMAC-SHA256 of
``<X-Memwarden-Timestamp>.<raw body>`` under ``MEMWARDEN_ALERT_WEBHOOK_SECRET``, and reject a
timestamp far from their clock (a replayed body).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

from memwarden.observability.alerts import discord
from memwarden.observability.alerts.notice import Notice
from memwarden.observability.alerts.targets import Kind

USER_AGENT = "memwarden-alerts/1"
SLACK_HEADER, SLACK_SECTION, SLACK_FIELD, SLACK_FIELDS, SLACK_TEXT = 150, 3000, 2000, 10, 3000
SIGNATURE_HEADER = "X-Memwarden-Signature"
DELIVERY_ID_HEADER = "X-Memwarden-Delivery-Id"
TIMESTAMP_HEADER = "X-Memwarden-Timestamp"


def body(kind: Kind, notice: Notice) -> bytes:
    data: dict[str, Any]
    if kind == "discord":
        data = discord.payload(notice)
    elif kind == "slack":
        data = slack_payload(notice)
    else:
        data = generic_payload(notice)
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def headers(kind: Kind, notice: Notice, raw: bytes, secret: str | None) -> dict[str, str]:
    """Headers for one attempt (a fresh timestamp each time, so the signature is fresh too)."""
    result = {"Content-Type": "application/json", "User-Agent": USER_AGENT}
    if notice.uid:
        result[DELIVERY_ID_HEADER] = notice.uid
    if kind == "generic":
        result["X-Memwarden-Event"] = notice.kind
        result["X-Memwarden-Delivery"] = str(notice.delivery_id)
        if secret:
            stamp = str(int(time.time()))
            result[TIMESTAMP_HEADER] = stamp
            result[SIGNATURE_HEADER] = sign(raw, secret, stamp)
    return result


def sign(raw: bytes, secret: str, stamp: str) -> str:
    mac = hmac.new(secret.encode("utf-8"), stamp.encode("ascii") + b"." + raw, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def generic_payload(notice: Notice) -> dict[str, Any]:
    return {
        "source": "memwarden",
        "kind": notice.kind,
        "status": notice.status,
        "severity": notice.severity,
        "title": notice.title,
        "message": notice.message,
        "context": notice.context,
        "fingerprint": notice.fingerprint,
        "timestamp": notice.at.isoformat(),  # the seed's name
        "time": notice.at.isoformat(),
        "alert_id": notice.alert_id,
        "delivery_id": notice.delivery_id,
        "delivery_uid": notice.uid,
        "count": notice.count,
        "folded": notice.folded,
    }


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def mrkdwn(text: str, limit: int) -> str:
    """Escaped for Slack (no ``<!channel>`` from alert text) and at most ``limit`` long."""
    escaped = _escape(text)
    if len(escaped) <= limit:
        return escaped
    raw = text[: limit - 1]
    while len(_escape(raw)) > limit - 1:
        raw = raw[: len(raw) - (len(_escape(raw)) - (limit - 1))]
    return _escape(raw) + "…"


def _plain(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def slack_payload(notice: Notice) -> dict[str, Any]:
    blocks: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": {"type": "plain_text", "text": _plain(notice.headline, SLACK_HEADER)},
        },
        {
            "type": "section",
            "text": {"type": "mrkdwn", "text": mrkdwn(notice.message or "—", SLACK_SECTION)},
        },
    ]
    pairs: list[tuple[str, str]] = []
    folded = notice.folded_line()
    if folded:
        pairs.append(("Folded repeats", folded))
    for key, value in notice.context.items():
        pairs.append((str(key), value if isinstance(value, str) else json.dumps(value)))
    if len(pairs) > SLACK_FIELDS:
        left_out = len(pairs) - (SLACK_FIELDS - 1)
        pairs = pairs[: SLACK_FIELDS - 1] + [("…", f"{left_out} more context entries left out")]
    if pairs:
        fields = []
        for name, value in pairs:
            head = f"*{mrkdwn(name, 200)}*\n"
            fields.append(
                {"type": "mrkdwn", "text": head + mrkdwn(value or "—", SLACK_FIELD - len(head))}
            )
        blocks.append({"type": "section", "fields": fields})
    footer = f"memwarden · {notice.severity} · {notice.fingerprint[:12]} · {notice.at.isoformat()}"
    blocks.append(
        {"type": "context", "elements": [{"type": "mrkdwn", "text": mrkdwn(footer, 3000)}]}
    )
    colour = f"#{notice.colour:06x}"
    fallback = mrkdwn(f"[{notice.severity}] {notice.headline}", SLACK_TEXT)
    return {"text": fallback, "attachments": [{"color": colour, "blocks": blocks}]}
