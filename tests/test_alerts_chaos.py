"""Chaos: 50 alerts through a webhook outage, a killed delivering process, 429s, 500s and hangs.

The receiver (a real HTTP server on loopback) is down at first: connections are refused while
a child process raises 50 alerts and starts delivering them. The child is killed (SIGKILL)
mid-outage; a new delivering process takes over the outbox (and its backoff state). Then the
receiver comes up on the same port and answers 429 with Retry-After, then 500s, then hangs
past the client's timeout, then success. Every alert must arrive, none may be lost, and a
repeat may only carry the same delivery id as the first copy. On both engines' outboxes.

The full-length run (a 60 s outage, default backoff) is a soak; the default run compresses
time (a short outage, a small backoff cap) so it takes a few seconds.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from typing import Any

import pytest
import sqlalchemy as sa

from alert_support import Receiver, Step, closed_port
from memwarden import Memwarden, Settings
from memwarden.observability.alerts import Alerts
from memwarden.observability.alerts.service import policy_from

PATH = "/hook/chaos-secret"
ALERTS = 50

CHILD = """
import sys, time
from dataclasses import replace
from memwarden import Settings
from memwarden.db.store import Store
from memwarden.observability.alerts import Alerts
from memwarden.observability.alerts.service import policy_from

settings = Settings()
store = Store(settings)
policy = replace(policy_from(settings), poll=0.1, lease_margin=1.0)
alerts = Alerts(settings, store, policy=policy)
for n in range(int(sys.argv[1])):
    alerts.emit("warning", f"chaos alert {n:02d}", f"number {n}", {"n": n})
assert alerts.flush(30)
print("RAISED", flush=True)
time.sleep(3600)
"""


def _env(settings: Settings, changes: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEMWARDEN_")}
    env["MEMWARDEN_HOME"] = str(settings.home)
    if settings.database_url:
        env["MEMWARDEN_DATABASE_URL"] = settings.database_url
    return env | changes


def run_chaos(
    mw: Memwarden,
    *,
    outage: float,
    knobs: dict[str, Any],
    hang: float,
    errors: int = 3,
    hangs: int = 2,
    settle: float = 60.0,
) -> None:
    port = closed_port()
    url = f"http://127.0.0.1:{port}{PATH}"
    env_knobs = {f"MEMWARDEN_{k.upper()}": str(v) for k, v in knobs.items()}
    env = _env(mw.settings, {"MEMWARDEN_ALERT_WEBHOOK": url, **env_knobs})
    src = os.path.join(os.path.dirname(__file__), "..", "src")
    env["PYTHONPATH"] = os.pathsep.join([os.path.abspath(src), env.get("PYTHONPATH", "")])
    started = time.monotonic()
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(ALERTS)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    try:
        assert child.stdout is not None
        line = child.stdout.readline()
        assert line.startswith("RAISED"), f"the child said {line!r}"
        time.sleep(outage / 2)  # delivering into a refused port
    finally:
        child.send_signal(signal.SIGKILL)
        child.communicate(timeout=30)
    settings = mw.settings.model_copy(
        update={"alert_webhook": url, **knobs, "alert_throttle_seconds": 0.0}
    )
    # The backoff the killed process built up is in the outbox, for the next one to continue.
    with mw.store.read() as conn:
        head = conn.execute(
            sa.text("SELECT failures, attempts, state FROM alert_deliveries ORDER BY id LIMIT 1")
        ).one()
    assert head.state == "pending" and head.failures >= 1 and head.attempts >= 1
    taken_over = Alerts(settings, mw.store, policy=replace(policy_from(settings), poll=0.1))
    receiver: Receiver | None = None
    try:
        time.sleep(max(0.0, outage - (time.monotonic() - started)))  # the rest of the outage
        receiver = Receiver(port)
        receiver.plan(
            PATH,
            Step(429, {"Retry-After": "1"}, b"slow down"),
            *[Step(503, {"Retry-After": "0"}, b"maintenance")] * 2,
            *[Step(500, {}, b"boom")] * errors,
            *[Step(hang=hang)] * hangs,
        )
        assert taken_over.drain(settle, everything=True), "deliveries still pending"
        got = receiver.on(PATH)
    finally:
        taken_over.close(2)
        if receiver is not None:
            receiver.close()
    # Every alert arrived; repeats (the hung requests the client gave up on) carry the same id.
    firsts: dict[str, dict[str, Any]] = {}
    by_title: dict[str, set[str]] = {}
    for request in got:
        body = request.json()
        uid = request.headers["x-memwarden-delivery-id"]
        assert body["delivery_uid"] == uid
        if uid in firsts:
            assert (
                body["title"] == firsts[uid]["title"]
                and body["alert_id"] == (firsts[uid]["alert_id"])
            )
        firsts.setdefault(uid, body)
        by_title.setdefault(body["title"], set()).add(uid)
    assert sorted(by_title) == [f"chaos alert {n:02d}" for n in range(ALERTS)]
    assert all(len(uids) == 1 for uids in by_title.values())  # one id per alert
    statuses = [r for r in got if r.json()["title"] == "chaos alert 00"]
    assert len(statuses) == 1 + 2 + errors + hangs + 1  # the head took every blow, then arrived
    assert statuses[1].at - statuses[0].at >= 0.9  # the 429's Retry-After: 1 was honoured
    with mw.store.read() as conn:
        states = conn.execute(
            sa.text("SELECT state, count(*) AS n FROM alert_deliveries GROUP BY state")
        ).all()
        final = conn.execute(
            sa.text("SELECT failures, attempts FROM alert_deliveries ORDER BY id LIMIT 1")
        ).one()
    assert {s.state: s.n for s in states} == {"delivered": ALERTS}
    # Refused connections, 500s and hangs count as failures; the 429s and 503s never do.
    assert final.failures == final.attempts - (1 + 2) - 1
    print(json.dumps({"requests": len(got), "head_attempts": final.attempts}))


def test_chaos_every_alert_arrives_once_per_id(mw: Memwarden) -> None:
    run_chaos(
        mw,
        outage=1.5,
        knobs={
            "alert_webhook_timeout": 0.5,
            "alert_webhook_backoff": 0.05,
            "alert_webhook_backoff_max": 0.3,
        },
        hang=1.0,
        settle=60.0,
    )


@pytest.mark.soak
@pytest.mark.timeout(1200)  # a 60 s outage, then default backoff steps of up to minutes
def test_chaos_soak_a_60s_outage_with_default_backoff(mw: Memwarden) -> None:
    # Default backoff (1 s doubling, capped at 5 min): after the outage the counted failures
    # push the next attempts minutes apart, so the receiver's blows are fewer here.
    run_chaos(mw, outage=60.0, knobs={}, hang=12.0, errors=1, hangs=1, settle=900.0)
