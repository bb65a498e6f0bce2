"""The dashboard's pages through the app, on both engines: what each page shows, that hostile
memory content stays text, sign-in, roles and CSRF, revert, the audit explorer, alerts,
operations, and the same overview as JSON."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from api_support import auth
from core_support import db_state
from dashboard_support import (
    IMG_PAYLOAD,
    SCRIPT_PAYLOAD,
    assert_no_markup_from,
    csrf_of,
    dashboard_client,
    one,
    sign_in,
    soup,
)
from memwarden import Memwarden
from memwarden.audit.actor import acting_as
from memwarden.core.provenance import Scopes
from memwarden.db import schema
from memwarden.nightly.runner import run_nightly
from memwarden.web.pages import audit as audit_page
from memwarden.web.pages import memory as memory_page
from memwarden.web.sessions import COOKIE


@pytest.fixture
def tokens(mw: Memwarden) -> dict[str, str]:
    return {role: mw.create_key(f"{role}-key", role)[1] for role in ("read", "write", "admin")}


def test_overview_open_on_loopback(mw: Memwarden) -> None:
    mw.add_project("zephyr")
    with acting_as("cli:ines"):
        first = mw.remember("atlas", "The launch window opens 9 June", type="project").memory
        mw.promote(first.id, note="checked")
        mw.remember("atlas", "Tabs over spaces", type="preference")
        mw.remember("zephyr", "Static fire on Friday", status="active")
    with dashboard_client(mw) as client:
        response = client.get("/dashboard/")
        assert response.status_code == 200
        csp = response.headers["content-security-policy"]
        assert "script-src 'none'" in csp and "default-src 'none'" in csp
        assert response.headers["x-frame-options"] == "DENY"
        cookie = response.headers["set-cookie"]
        assert f"{COOKIE}=" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
        page = soup(response)
    assert one(page, "#tile-memories .big").get_text(strip=True) == "3"
    assert one(page, "#tile-queue .big").get_text(strip=True) == "1"
    statuses = {
        row.select("td")[0].get_text(strip=True): row.select("td")[1].get_text(strip=True)
        for row in page.select("#counts-status tr")
    }
    assert statuses["active"] == "2" and statuses["candidate"] == "1" and statuses["erased"] == "0"
    types = {
        r.select("td")[0].get_text(): r.select("td")[1].get_text()
        for r in page.select("#counts-type tr")
    }
    assert (types["project"], types["preference"], types["knowledge"]) == ("1", "1", "1")
    projects = [r.select("td")[0].get_text() for r in page.select("#counts-project tbody tr")]
    assert projects == ["atlas", "zephyr"]
    rows = page.select("#recent-mutations tbody tr")
    assert len(rows) == 6  # 2 projects + 3 creates + 1 promote, newest first
    newest = [td.get_text(strip=True) for td in rows[0].select("td")]
    assert newest[2:5] == ["cli:ines", "created", "memory #3"]
    assert newest[5] == "Static fire on Friday"
    promoted = [td.get_text(strip=True) for td in rows[2].select("td")]
    assert promoted[2:6] == [
        "cli:ines",
        "promoted",
        f"memory #{first.id}",
        "The launch window opens 9 June",
    ]
    assert one(rows[2], "a")["href"] == f"/dashboard/memory/{first.id}"
    bars = page.select("#chart-mutations svg rect")
    assert len(bars) == 30 and "6 mutations" in bars[-1].get_text()
    for section in ("#tile-nightly", "#tile-integrity", "#tile-harness"):
        assert "no run recorded" in one(page, section).get_text()
    assert "No integrity run recorded" in one(page, "#integrity").get_text()


def test_hostile_content_stays_text(mw: Memwarden) -> None:
    script = mw.remember("atlas", SCRIPT_PAYLOAD).memory
    image = mw.remember("atlas", IMG_PAYLOAD).memory
    mw.update(image.id, content=IMG_PAYLOAD + " <b>bold</b>")
    mw.alerts.emit("critical", "<script>alert(1)</script>", IMG_PAYLOAD)
    assert mw.alerts.flush()
    with dashboard_client(mw) as client:
        pages = {
            path: soup(client.get(path))
            for path in (
                "/dashboard/",
                "/dashboard/triage",
                "/dashboard/audit",
                "/dashboard/alerts",
                f"/dashboard/memory/{script.id}",
                f"/dashboard/memory/{image.id}",
            )
        }
    for path, page in pages.items():
        assert_no_markup_from(page)
        text = page.get_text()
        assert "window.__pwned" in text, path  # shown, as text
    assert (
        one(pages[f"/dashboard/memory/{script.id}"], "#memory-content").get_text() == SCRIPT_PAYLOAD
    )
    triage = pages["/dashboard/triage"]
    shown = [pre.get_text() for pre in triage.select("#queue pre.content")]
    assert shown == [IMG_PAYLOAD + " <b>bold</b>", SCRIPT_PAYLOAD]
    diff = pages[f"/dashboard/memory/{image.id}"].select("#timeline table.diff td.after")
    assert diff[0].get_text() == IMG_PAYLOAD + " <b>bold</b>"


def test_sign_in_sessions_and_roles(mw: Memwarden, tokens: dict[str, str]) -> None:
    memory_id = mw.remember("atlas", "A candidate to triage").memory.id
    with dashboard_client(mw) as client:
        away = client.get("/dashboard/triage?project=atlas", follow_redirects=False)
        assert away.status_code == 303
        assert (
            away.headers["location"]
            == "/dashboard/login?next=%2Fdashboard%2Ftriage%3Fproject%3Datlas"
        )
        refused = sign_in(client, tokens["read"][:-4] + "AAAA")
        assert refused.status_code == 401
        assert "unknown API key" in one(soup(refused), ".error[role=alert]").get_text()
        # an open redirect is refused: the next page is always on the dashboard
        arrived = sign_in(client, tokens["read"], next="https://evil.example/")
        assert (arrived.status_code, arrived.headers["location"]) == (303, "/dashboard/")
        cookie = client.cookies[COOKIE]
        assert tokens["read"] not in cookie and tokens["read"].split("_", 2)[2] not in cookie
        page = soup(client.get("/dashboard/triage"))
        assert "read-key" in one(page, ".who").get_text()
        assert page.select("#queue form") == []  # read sees, but has no buttons
        csrf = csrf_of(page)  # the sign-out form's token
        before = db_state(mw)
        denied = client.post(f"/dashboard/triage/{memory_id}/promote", data={"csrf": csrf})
        assert denied.status_code == 403 and "triage needs the write role" in denied.text
        assert client.get(f"/dashboard/memory/{memory_id}/revert?to=1").status_code == 403
        assert db_state(mw) == before
        # revoking the key ends its session at once
        mw.revoke_key("read-key")
        gone = client.get("/dashboard/", follow_redirects=False)
        assert gone.status_code == 303 and gone.headers["location"].startswith("/dashboard/login")
        # a forged cookie is no session
        client.cookies.set(COOKIE, cookie.replace(".k.", ".k.9"), path="/dashboard")
        assert client.get("/dashboard/", follow_redirects=False).status_code == 303

        # The person signing in with a key triages within its scopes: promoting is granted.
        mw.set_key_scopes("write-key", replace(Scopes.for_role("write"), promote=True))
        assert sign_in(client, tokens["write"]).status_code == 303
        page = soup(client.get("/dashboard/triage"))
        form = one(page, f"#candidate-{memory_id} form")
        assert form["action"] == f"/dashboard/triage/{memory_id}/promote"
        token = csrf_of(form)
        forged = client.post(f"/dashboard/triage/{memory_id}/promote", data={"csrf": "0" * 64})
        assert forged.status_code == 403 and "reload the page" in forged.text
        missing = client.post(f"/dashboard/triage/{memory_id}/promote", data={})
        assert missing.status_code == 422
        assert mw.get(memory_id).status == "candidate"
        done = client.post(
            f"/dashboard/triage/{memory_id}/promote",
            data={"csrf": token, "note": "seen in review"},
            follow_redirects=False,
        )
        assert done.status_code == 303
        flash = one(soup(client.get(done.headers["location"])), ".flash").get_text()
        assert flash == f"Memory #{memory_id} promoted as api:write-key."
        signed_in = next(c.value for c in client.cookies.jar if c.name == COOKIE and c.value)
        out = client.post("/dashboard/logout", data={"csrf": token}, follow_redirects=False)
        assert out.headers["location"] == "/dashboard/login"
        assert client.get("/dashboard/", follow_redirects=False).status_code == 303
        # sign-out ends the session on the server: a copy of the cookie opens nothing
        client.cookies.clear()
        client.cookies.set(COOKIE, signed_in, path="/dashboard")
        assert client.get("/dashboard/", follow_redirects=False).status_code == 303
    last = mw.history(memory_id)[-1]
    assert (last.action, last.actor, last.note) == ("promoted", "api:write-key", "seen in review")


def test_memory_page_timeline_blame_and_revert(
    mw: Memwarden, tokens: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with acting_as("cli:ines"):
        memory = mw.remember("atlas", "The launch window opens 9 June", status="active").memory
        mw.update(memory.id, content="The launch window opens 16 June", note="slip")
    with acting_as("api:bot"):
        mw.update(memory.id, confidence=0.9)
    history = mw.history(memory.id)
    with dashboard_client(mw) as client:
        sign_in(client, tokens["admin"])
        page = soup(client.get(f"/dashboard/memory/{memory.id}"))
        assert one(page, "#memory-content").get_text() == "The launch window opens 16 June"
        entries = page.select("#timeline li")
        assert [li["data-seq"] for li in entries] == [str(r.seq) for r in reversed(history)]
        content_change = [
            [td.get_text() for td in tr.select("td")]
            for tr in entries[1].select("table.diff tbody tr")
        ]
        assert content_change == [
            ["The launch window opens 9 June", "The launch window opens 16 June"]
        ]
        assert "“slip”" in entries[1].get_text()
        blame = {
            tr.select_one("th").get_text(): tr.select("td")[1].get_text()
            for tr in page.select("#blame tbody tr")
        }
        assert blame["confidence"].startswith("api:bot") and blame["content"].startswith("cli:ines")
        assert "content_hash" not in blame and "id" not in blame
        # the newest version is the memory as it is: no revert offered there
        assert entries[0].select("a.button") == []
        link = one(entries[1], "a.button")
        assert link["href"] == f"/dashboard/memory/{memory.id}/revert?to={history[1].seq}"
        confirm = soup(client.get(f"/dashboard/memory/{memory.id}/revert?to={history[0].seq}"))
        changes = [
            [c.get_text() for c in tr.select("th, td")]
            for tr in confirm.select("table.diff tbody tr")
        ]
        assert changes == [
            ["content", "The launch window opens 16 June", "The launch window opens 9 June"],
            ["confidence", "0.9", "0.6"],
        ]
        form = one(confirm, f'form[action="/dashboard/memory/{memory.id}/revert"]')
        done = client.post(
            str(form["action"]),
            data={"csrf": csrf_of(form), "to_seq": history[0].seq, "note": "undo the slip"},
            follow_redirects=False,
        )
        assert done.status_code == 303
        after = soup(client.get(done.headers["location"]))
        assert (
            f"Reverted to the version at ledger row {history[0].seq}."
            in one(after, ".flash").get_text()
        )
        top = after.select("#timeline li")[0]
        assert "reverted" in top.get_text() and "api:admin-key" in top.get_text()
        # an illegal revert is a page, not a traceback
        bad = client.get(f"/dashboard/memory/{memory.id}/revert?to=1")
        assert (
            bad.status_code == 422
            and "not part of memory" in one(soup(bad), "#error-message").get_text()
        )
        assert client.get("/dashboard/memory/999999").status_code == 404
        # a long history comes a page at a time, newest first
        monkeypatch.setattr(memory_page, "PAGE", 2)
        first = soup(client.get(f"/dashboard/memory/{memory.id}"))
        assert len(first.select("#timeline li")) == 2
        older = one(first, ".pager a")["href"]
        rest = soup(client.get(str(older)))
        assert [li["data-seq"] for li in rest.select("#timeline li")] == [
            str(history[1].seq),
            str(history[0].seq),
        ]
    last = mw.history(memory.id)[-1]
    assert (last.action, last.actor, last.note) == ("reverted", "api:admin-key", "undo the slip")
    assert mw.get(memory.id).content == "The launch window opens 9 June"


def test_audit_explorer(mw: Memwarden, monkeypatch: pytest.MonkeyPatch) -> None:
    mw.add_project("zephyr")
    with acting_as("api:alice"):
        for n in range(4):
            mw.remember("atlas", f"Atlas fact number {n}")
    with acting_as("api:bob"):
        bob = mw.remember("zephyr", "Zephyr fact").memory
        mw.promote(bob.id)
    monkeypatch.setattr(audit_page, "PAGE", 3)
    with dashboard_client(mw) as client:
        page = soup(client.get("/dashboard/audit?actor=api:alice"))
        seqs = [int(tr["data-seq"]) for tr in page.select("#entries tbody tr")]
        assert len(seqs) == 3 and seqs == sorted(seqs, reverse=True)
        assert {tr.select_one(".actor").get_text() for tr in page.select("#entries tbody tr")} == {
            "api:alice"
        }
        older = soup(client.get(str(one(page, ".pager a")["href"])))
        assert [int(tr["data-seq"]) for tr in older.select("#entries tbody tr")] == [seqs[-1] - 1]
        assert one(older, 'input[name="actor"]')["value"] == "api:alice"
        promoted = soup(client.get("/dashboard/audit?action=promoted&project=zephyr"))
        rows = promoted.select("#entries tbody tr")
        assert len(rows) == 1 and "api:bob" in rows[0].get_text()
        assert one(promoted, 'select[name="project"] option[selected]')["value"] == "zephyr"
        future = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
        assert "No ledger row matches" in client.get(f"/dashboard/audit?since={future}").text
        past = (datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
        assert (
            len(soup(client.get(f"/dashboard/audit?until={past}")).select("#entries tbody tr")) == 0
        )
        bad = client.get("/dashboard/audit?since=yesterday")
        assert bad.status_code == 422 and "since" in bad.text
        # Shaped like a date but not one, or out of range once in UTC: a 422, not a 500.
        for value in ("2026-13-45T00:00", "9999-12-31T23:59:59-14:00", "0001-01-01T00:00+14:00"):
            for name in ("since", "until"):
                refused = client.get("/dashboard/audit", params={name: value})
                assert refused.status_code == 422 and name in refused.text, (name, value)
        # A form token that is not ASCII is a refusal too (compare_digest raised: a 500).
        for action in ("/dashboard/audit/verify", "/dashboard/logout"):
            crafted = client.post(action, data={"csrf": "\u00e9t\u00e9"}, follow_redirects=False)
            assert crafted.status_code < 500, (action, crafted.status_code)
        status = one(page, "#verify-status").get_text()
        assert "ok" in status and "checked against the witness" in status
        form = one(page, 'form[action="/dashboard/audit/verify"]')
        full = soup(client.post("/dashboard/audit/verify", data={"csrf": csrf_of(form)}))
        assert "whole chain: 8 row(s) verified" in " ".join(
            one(full, "#verify-status").get_text().split()
        )


def test_alerts_and_deliveries(settings_with_webhook: Memwarden) -> None:
    mw = settings_with_webhook
    mw.alerts.emit("warning", "Candidate queue above 200", "214 wait", {"queue": 214})
    mw.alerts.emit("critical", "Ledger write failed", "1 entry not recorded")
    assert mw.alerts.drain(20.0)
    with dashboard_client(mw) as client:
        overview = soup(client.get("/dashboard/"))
        alerts = soup(client.get("/dashboard/alerts"))
        only = soup(client.get("/dashboard/alerts?severity=warning"))
    last = {
        tr.select("td")[0].get_text(strip=True): tr.select("td")[1].get_text()
        for tr in overview.select("#last-alerts tr")
    }
    # The one webhook is gone: both deliveries are dead letters, and the newest critical alert
    # says so (through the log, the file and the dashboard: never to the dead webhook).
    assert "Alert delivery gave up: http://127.0.0.1:9/***" in last["critical"]
    assert "Candidate queue above 200" in last["warning"]
    history = overview.select("#alert-history tbody tr")
    assert [tr.select("td")[4].get_text(strip=True) for tr in history] == [
        "no webhook",
        "dead",
        "dead",
    ]
    rows = alerts.select("#alert-feed tbody tr")
    assert len(rows) == 3
    assert "after 1 attempt(s)" in rows[1].get_text() and "127.0.0.1:9" in rows[1].get_text()
    assert len(only.select("#alert-feed tbody tr")) == 1
    dead = alerts.select("#dead-letters tbody tr")
    assert len(dead) == 2 and all("dead" in tr.get_text() for tr in dead)
    assert "Ledger write failed" in alerts.select("#dead-letters")[0].get_text()


@pytest.fixture
def settings_with_webhook(settings):  # type: ignore[no-untyped-def]
    """A memwarden whose webhook points at a closed port: every delivery fails, once."""
    configured = settings.model_copy(
        update={
            "alert_webhook": "http://127.0.0.1:9/hook",
            "alert_webhook_attempts": 1,
            "alert_webhook_backoff": 0.0,
            "alert_webhook_timeout": 2.0,
        }
    )
    instance = Memwarden.init(configured)
    try:
        yield instance
    finally:
        instance.close()


def test_operations_page(settings, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with Memwarden.init(settings) as quiet, dashboard_client(quiet) as client:
        page = soup(client.get("/dashboard/operations"))
        assert "The operation log is off" in one(page, "#oplog-status").get_text()
    logging = settings.model_copy(update={"oplog_actions": "recall,remember"})
    with Memwarden(logging) as mw:
        mw.add_project("atlas")
        mw.remember("atlas", "The launch window opens 9 June")
        mw.recall("launch window", project="atlas")
        mw.recall("launch window", project="atlas")
        assert mw.oplog.flush(5.0)
        with dashboard_client(mw) as client:
            page = soup(client.get("/dashboard/operations?window=1h"))
            assert client.get("/dashboard/operations?window=2d").status_code == 422
    assert "records recall, remember" in " ".join(one(page, "#oplog-status").get_text().split())
    stats = {
        tr.select("td")[0].get_text(): tr.select("td")[1].get_text()
        for tr in page.select("#oplog-stats tbody tr")
    }
    assert stats == {"recall": "2", "remember": "1"}
    assert len(page.select("#oplog-recent tbody tr")) == 3


def test_admin_dashboard_json(mw: Memwarden, tokens: dict[str, str]) -> None:
    memory = mw.remember("atlas", "The launch window opens 9 June").memory
    mw.alerts.emit("warning", "Queue long", "214 wait")
    assert mw.alerts.flush()
    with dashboard_client(mw) as client:
        assert client.get("/admin/dashboard").status_code == 401
        assert client.get("/admin/dashboard", headers=auth(tokens["write"])).status_code == 403
        response = client.get("/admin/dashboard", headers=auth(tokens["admin"]))
    assert response.status_code == 200
    data = response.json()
    assert data["counts"]["by_status"]["candidate"] == 1 and data["candidate_queue"] == 1
    assert data["counts"]["by_project"] == [
        {"name": "atlas", "total": 1, "by_status": {"candidate": 1}},
    ]
    # The alert's mirror into project state is audited too (actor "alerts"): skip it here.
    recent = next(r for r in data["recent_mutations"] if r["actor"] != "alerts")
    assert (recent["entity_id"], recent["action"], recent["actor"]) == (
        str(memory.id),
        "created",
        "library",
    )
    assert recent["preview"] == "The launch window opens 9 June"
    assert data["recent_audit"] == data["recent_mutations"]  # the seed's key, kept too
    assert data["last_alerts"]["warning"]["title"] == "Queue long"
    assert data["alerts"][0]["outcome"] == "no webhook"
    # 5 mutations (the alert mirror is off in the test fixtures: no rows of its own).
    assert len(data["mutations_per_day"]) == 30 and data["mutations_per_day"][-1]["count"] == 5
    assert (data["nightly"], data["integrity"], data["harness"]) == (None, None, [])


def test_open_dashboard_guards(mw: Memwarden) -> None:
    with dashboard_client(mw, base_url="http://memwarden.example") as client:
        rebound = client.get("/dashboard/")
        assert rebound.status_code == 403 and "loopback" in rebound.text
    with dashboard_client(mw, open_allowed=False) as client:
        away = client.get("/dashboard/", follow_redirects=False)
        assert away.status_code == 303
        login = soup(client.get(away.headers["location"]))
        assert "memwarden key create" in one(login, ".signin").get_text()
    with dashboard_client(mw) as client:
        assert (
            client.get("/dashboard/login", follow_redirects=False).headers["location"]
            == "/dashboard/"
        )
        assert (
            client.get("/dashboard/static/dashboard.css")
            .headers["content-type"]
            .startswith("text/css")
        )
        assert client.get("/dashboard/static/nothing.js").status_code == 404
        assert client.get("/dashboard/memory?id=0").status_code == 422
        assert (
            client.get("/dashboard/memory?id=7", follow_redirects=False).headers["location"]
            == "/dashboard/memory/7"
        )


def test_mutations_per_day(mw: Memwarden) -> None:
    for n in range(3):
        mw.remember("atlas", f"Fact {n}")
    today = datetime.now(UTC).date()
    counted = mw.mutations_per_day(3, today)
    assert [(d.day, d.count) for d in counted] == [
        (today - timedelta(days=2), 0),
        (today - timedelta(days=1), 0),
        (today, 4),  # the project and three memories
    ]
    assert [d.count for d in mw.mutations_per_day(2, today - timedelta(days=1))] == [0, 0]
    assert [d.count for d in mw.mutations_per_day(1, today + timedelta(days=1))] == [0]


def test_overview_shows_nightly_integrity_and_harness(settings, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    fixtures = tmp_path / "cases.json"
    fixtures.write_text(
        json.dumps(
            {
                "projects": {
                    "atlas": [
                        {"query": "launch window", "expect_text": "opens 9 June"},
                        {"query": "launch window", "expect_text": "never said"},
                    ]
                }
            }
        ),
        encoding="utf-8",
    )
    configured = settings.model_copy(update={"harness_fixtures": fixtures})
    with Memwarden.init(configured) as mw:
        mw.add_project("atlas")
        mw.remember("atlas", "The launch window opens 9 June", status="active")
        # Another memory (a tampered one is withheld from the harness's recall too).
        memory = mw.remember("atlas", "The crew is four", status="active").memory
        mw.run_harness()  # 1 of 2: below the 85% floor
        with mw.store.engine.begin() as conn:  # a change behind memwarden's back: an audit gap
            conn.execute(
                sa.update(schema.memories)
                .where(schema.memories.c.id == memory.id)
                .values(confidence=0.1)
            )
        run = run_nightly(mw, skip=["extract"])
        with dashboard_client(mw) as client:
            page = soup(client.get("/dashboard/"))
            data = client.get("/admin/dashboard").json()
    steps = {
        tr.select("td")[0].get_text(): tr.select("td")[1].get_text(strip=True)
        for tr in page.select("#nightly tbody tr")
    }
    assert steps == {s.name: s.status for s in run.steps}
    assert steps["extract"] == "skipped" and steps["harness"] == "ok"
    assert one(page, "#tile-nightly .big").get_text(strip=True) == run.status
    gap = next(
        d for d in page.select("#integrity details.finding") if "audit_gap_replay" in d.get_text()
    )
    assert one(gap, "a")["href"] == f"/dashboard/memory/{memory.id}"
    assert "finding" in one(page, "#tile-integrity .big").get_text()
    points = page.select("#chart-harness svg circle")
    assert [p.select_one("title").get_text() for p in points][0].endswith(": 50.0%")
    assert points[0]["fill"] == "#b3261e"  # under the floor
    assert len(points) == 2 and one(page, "#tile-harness .big").get_text() == "50.0%"
    assert data["nightly"]["id"] == run.id
    assert data["integrity"]["findings"][0]["check"] == "audit_gap_replay"
    assert [h["pass_rate"] for h in data["harness"]] == [0.5, 0.5]


def test_erased_memory_and_unknown_pages(mw: Memwarden, tokens: dict[str, str]) -> None:
    memory = mw.remember("atlas", "Ines's phone number is 555-0100", status="active").memory
    mw.update(memory.id, confidence=0.9)
    mw.erase(memory.id, "personal data")
    with dashboard_client(mw) as client:
        sign_in(client, tokens["admin"])
        page = soup(client.get(f"/dashboard/memory/{memory.id}"))
        assert "555-0100" not in page.get_text()
        assert "erased for privacy" in one(page, "#current").get_text()
        assert page.select("#timeline a.button") == []  # nothing to revert to
        assert len(page.select("#timeline li")) == 3
        missing = client.get("/dashboard/nowhere/at/all")
        assert missing.status_code == 404 and "no dashboard page" in soup(missing).get_text()
        assert client.get("/dashboard/triage").status_code == 200  # the fallback shadows nothing
        # a form posted after the session ended goes back to the overview after sign-in
        client.cookies.clear()
        late = client.post("/dashboard/audit/verify", data={"csrf": "x"}, follow_redirects=False)
        assert late.headers["location"] == "/dashboard/login?next=%2Fdashboard%2F"
