"""Alerts without a database: normalising, fingerprints, webhook URLs and payload formats."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from alert_support import discord_violations, slack_violations
from memwarden.observability.alerts import (
    SEVERITIES,
    AlertConfigError,
    discord,
    fingerprint,
    formats,
    model,
)
from memwarden.observability.alerts.notice import Notice
from memwarden.observability.alerts.targets import parse_target, parse_targets, redact

SECRET_PATH = "/api/webhooks/123456/SeCrEtToKeN-abc"


def notice(**changes: object) -> Notice:
    base: dict[str, object] = {
        "kind": "alert",
        "alert_id": 7,
        "delivery_id": 9,
        "severity": "critical",
        "title": "Ledger write failed",
        "message": "the disk is full",
        "context": {"error_type": "OperationalError"},
        "fingerprint": "f" * 32,
        "at": datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        "count": 1,
        "folded": 0,
    }
    base.update(changes)
    return Notice(**base)  # type: ignore[arg-type]


def test_unknown_severity_falls_back_to_info_and_says_so() -> None:
    alert = model.build("apocalyptic", "Title", "Body")
    assert alert.severity == "info"
    assert alert.requested_severity == "apocalyptic"
    assert alert.context["requested_severity"] == "apocalyptic"
    assert "unknown severity 'apocalyptic'" in alert.message
    for level in SEVERITIES:
        assert model.build(level.upper(), "t", "m").severity == level
        assert "unknown severity" not in model.build(level, "t", "m").message


def test_fingerprint_is_severity_title_and_chosen_context_keys() -> None:
    a = model.build(
        "warning", "Queue long", "m1", {"queue": "triage", "size": 201}, fingerprint_keys=["queue"]
    )
    b = model.build(
        "warning", "Queue long", "m2", {"queue": "triage", "size": 350}, fingerprint_keys=["queue"]
    )
    c = model.build(
        "warning", "Queue long", "m1", {"queue": "other", "size": 201}, fingerprint_keys=["queue"]
    )
    d = model.build("critical", "Queue long", "m1", {"queue": "triage"}, fingerprint_keys=["queue"])
    assert a.fingerprint == b.fingerprint  # the message and other context do not name the problem
    assert len({a.fingerprint, c.fingerprint, d.fingerprint}) == 3
    assert a.fingerprint == fingerprint("warning", "Queue long", {"queue": "triage"}, ("queue",))


def test_texts_are_made_safe_for_storage() -> None:
    alert = model.build(
        "info",
        "line one\nline two\r\x1b[31m\u2028x",
        "a\x00b\ud800c\nnext",
        {"k": b"\xff", "t": {1, 2}},
    )
    assert "\n" not in alert.title and "\x1b" not in alert.title and "\u2028" not in alert.title
    assert alert.title.startswith("line one line two")
    assert alert.message == "a\ufffdb\ufffdc\nnext"
    assert alert.context == {"k": "\ufffd", "t": [1, 2]}
    json.dumps(alert.context)
    long = model.build("info", "x" * 5000, "y" * 200_000)
    assert len(long.title) == model.MAX_TITLE_CHARS and long.title.endswith("…")
    assert len(long.message) == model.MAX_MESSAGE_CHARS and "more characters cut" in long.message


def test_odd_context_values_never_break_an_alert() -> None:
    class Broken:
        def __str__(self) -> str:
            raise RuntimeError("no")

    alert = model.build(
        None,
        None,
        Broken(),
        {"when": datetime(2026, 1, 1, tzinfo=UTC), "nan": float("nan"), "b": Broken()},
    )
    assert alert.severity == "info"
    assert alert.context["nan"] == "nan" and alert.context["b"] == "<unprintable Broken>"
    assert alert.message.startswith("<unprintable Broken>")


def test_webhook_urls_kinds_and_redaction() -> None:
    d = parse_target("https://discord.com" + SECRET_PATH)
    s = parse_target("https://hooks.slack.com/services/T000/B000/XXXXSECRET")
    g = parse_target("https://alerts.example.org/hook?token=SECRET")
    forced = parse_target("discord+http://127.0.0.1:9999" + SECRET_PATH)
    assert (d.kind, s.kind, g.kind, forced.kind) == ("discord", "slack", "generic", "discord")
    assert forced.url == "http://127.0.0.1:9999" + SECRET_PATH
    for target in (d, s, g, forced):
        assert "SECRET" not in target.redacted.upper().replace("***", "")
        assert "SECRET" not in repr(target).upper().replace("***", "")
    assert d.redacted == "https://discord.com/***"
    assert forced.scrub(f"failed posting to {forced.url} at {SECRET_PATH}") == (
        "failed posting to http://127.0.0.1:9999/*** at /***"
    )
    both = parse_targets(
        f" https://discord.com{SECRET_PATH} , https://hooks.slack.com/services/a/b/c,,"
    )
    assert [t.kind for t in both] == ["discord", "slack"]
    assert (
        len(parse_targets(f"https://discord.com{SECRET_PATH},https://discord.com{SECRET_PATH}"))
        == 1
    )


@pytest.mark.parametrize(
    "bad",
    [
        "not a url",
        "ftp://example.org/hook",
        "https:///nohost",
        "teams+https://x.org/h",
        "http://x.org:99999/h",
        "mailto:ops@example.org",
    ],
)
def test_invalid_webhook_url_is_a_clear_configuration_error(bad: str) -> None:
    with pytest.raises(AlertConfigError) as caught:
        parse_targets(f"https://ok.example.org/hook,{bad}")
    text = str(caught.value)
    assert text.startswith("MEMWARDEN_ALERT_WEBHOOK:")
    assert "\n" not in text
    assert redact("https://h.example.org/p/SECRET?q=1") == "https://h.example.org/***"


def test_discord_embed_stays_within_every_limit() -> None:
    wide = "😀" * 5000  # two UTF-16 units each: Discord counts those
    context = {f"key {i} " + "k" * 300: "v" * 2000 for i in range(40)}
    for n in (
        notice(title="T" * 1000, message="M" * 10_000, context=context, folded=41),
        notice(title=wide, message=wide, context={"emoji": wide}),
        notice(title="", message="", context={"": "", "n": None, "nested": {"a": [1, 2]}}),
        notice(kind="resolved", folded=3),
    ):
        body = discord.payload(n)
        assert discord_violations(body) == []
        embed = body["embeds"][0]
        if n.title.startswith("T"):
            assert embed["title"].endswith("…") and embed["description"].endswith("…")
            assert embed["fields"][0]["name"] == "Folded repeats"
            assert "41 repeats" in embed["fields"][0]["value"]
            assert embed["fields"][-1]["name"] == "…"  # says that entries were left out
    assert discord.payload(notice())["embeds"][0]["color"] == 0xE74C3C
    assert discord.payload(notice(severity="info"))["embeds"][0]["color"] == 0x3498DB
    assert (
        discord.payload(notice(kind="resolved"))["embeds"][0]["title"]
        == "Resolved: Ledger write failed"
    )
    assert discord.clip("😀😀😀", 4) == "😀…"  # never half a surrogate pair
    # the receiver's checker itself catches a payload over the limits
    over = {"embeds": [{"title": "x" * 257, "fields": [{"name": "n", "value": "😀" * 513}]}]}
    assert len(discord_violations(over)) == 3


def test_slack_payload_escapes_and_stays_within_limits() -> None:
    n = notice(
        title="x" * 400,
        message="<!channel> & <@U123> " + "m" * 5000,
        context={f"k{i}": "v" * 3000 for i in range(15)},
    )
    body = formats.slack_payload(n)
    assert slack_violations(body) == []
    section = body["attachments"][0]["blocks"][1]["text"]["text"]
    assert section.startswith("&lt;!channel&gt; &amp; &lt;@U123&gt;") and section.endswith("…")
    assert body["attachments"][0]["color"] == "#e74c3c"
    assert formats.mrkdwn("&" * 10, 12).endswith("…") and len(formats.mrkdwn("&" * 10, 12)) <= 12


def test_generic_payload_and_its_signature() -> None:
    n = notice(folded=2, count=5)
    raw = formats.body("generic", n)
    data = json.loads(raw)
    assert {"severity", "title", "message", "context", "fingerprint", "status", "time"} <= set(data)
    assert data["status"] == "firing" and data["folded"] == 2
    headers = formats.headers("generic", n, raw, "s3cret")
    stamp = headers["X-Memwarden-Timestamp"]
    assert headers["X-Memwarden-Signature"] == formats.sign(raw, "s3cret", stamp)
    assert formats.sign(raw, "other", stamp) != headers["X-Memwarden-Signature"]
    assert "X-Memwarden-Signature" not in formats.headers("generic", n, raw, None)
    assert "X-Memwarden-Signature" not in formats.headers("discord", n, raw, "s3cret")
    assert json.loads(formats.body("generic", notice(kind="resolved")))["status"] == "resolved"
