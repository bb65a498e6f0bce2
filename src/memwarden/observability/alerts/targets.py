"""Webhook targets: parsing ``MEMWARDEN_ALERT_WEBHOOK``, telling the kinds apart, redacting.

A webhook URL is a secret (whoever holds it can post to the channel), so it is never logged
or stored in full: everything shows ``redacted`` (scheme, host and port only) and the outbox
keys deliveries by ``key``, a hash of the URL.

The kind comes from the host (``discord.com/api/webhooks/...``, ``hooks.slack.com``) or from an
explicit prefix: ``discord+https://...``, ``slack+https://...``, ``generic+https://...``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

from memwarden.errors import InvalidInputError

Kind = Literal["discord", "slack", "generic"]
KINDS: tuple[Kind, ...] = ("discord", "slack", "generic")
DISCORD_HOSTS = {"discord.com", "discordapp.com", "ptb.discord.com", "canary.discord.com"}
SLACK_HOSTS = {"hooks.slack.com"}


class AlertConfigError(InvalidInputError):
    """The alert settings cannot work (a malformed webhook URL): refused at start-up."""

    code = "configuration"


@dataclass(frozen=True)
class WebhookTarget:
    kind: Kind
    url: str  # the secret: only ever handed to the HTTP client
    key: str  # stable id of the URL, safe to store
    redacted: str  # safe to log and show

    def __repr__(self) -> str:
        return f"WebhookTarget({self.kind}, {self.redacted})"

    def scrub(self, text: str) -> str:
        """``text`` with the URL, its path and its query replaced by the redacted form."""
        parts = urlsplit(self.url)
        for secret in (self.url, parts.path, parts.query):
            if secret and len(secret) > 1:
                text = text.replace(secret, "/***" if secret != self.url else self.redacted)
        return text


def redact(url: str) -> str:
    """``scheme://host[:port]/***``: enough to tell targets apart, nothing that grants access."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or "?"
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "<unparseable URL>"
    return f"{parts.scheme or '?'}://{host}{port}/***"


def url_key(url: str) -> str:
    return hashlib.sha256(url.encode("utf-8")).hexdigest()[:32]


def parse_target(raw: str) -> WebhookTarget:
    text = raw.strip()
    forced: Kind | None = None
    scheme_head = text.split("://", 1)[0].lower()
    if "+" in scheme_head:
        prefix, _, rest_scheme = scheme_head.partition("+")
        if prefix not in KINDS:
            raise AlertConfigError(
                f"MEMWARDEN_ALERT_WEBHOOK: unknown webhook kind {prefix!r} in "
                f"{redact(text)} (use discord+, slack+ or generic+)"
            )
        forced = prefix
        text = rest_scheme + text[len(scheme_head) :]
    if any(c.isspace() for c in text) or any(ord(c) < 0x20 for c in text):
        raise AlertConfigError(f"MEMWARDEN_ALERT_WEBHOOK: {redact(text)} contains blanks")
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise AlertConfigError(
            f"MEMWARDEN_ALERT_WEBHOOK: {redact(text)} is not a valid URL ({exc})"
        ) from None
    if parts.scheme not in ("http", "https"):
        raise AlertConfigError(f"MEMWARDEN_ALERT_WEBHOOK: {redact(text)} is not an http(s) URL")
    if not parts.hostname:
        raise AlertConfigError(f"MEMWARDEN_ALERT_WEBHOOK: {redact(text)} has no host")
    del port
    kind = forced or _detect(parts.hostname.lower(), parts.path)
    return WebhookTarget(kind=kind, url=text, key=url_key(text), redacted=redact(text))


def _detect(host: str, path: str) -> Kind:
    if host in DISCORD_HOSTS and path.startswith("/api/webhooks/"):
        return "discord"
    if host in SLACK_HOSTS:
        return "slack"
    return "generic"


def parse_targets(value: str) -> list[WebhookTarget]:
    """Every URL in the comma-separated setting; duplicates once. Raises AlertConfigError."""
    targets: dict[str, WebhookTarget] = {}
    for raw in value.split(","):
        if raw.strip():
            target = parse_target(raw)
            targets.setdefault(target.key, target)
    return list(targets.values())
