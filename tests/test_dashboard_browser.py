"""The dashboard in a real browser: the system Chromium (never a downloaded one), driven by
Playwright, against a real ``memwarden serve`` process with API keys, on SQLite.

One server and one browser for the module. Screenshots of every page land in
``tests/screenshots/`` (git-ignored) for a person to look at. Without a ``chromium`` on PATH
the module skips loudly, and fails under CI=true (``make test`` installs Debian's).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from api_support import Server
from conftest import IN_CI
from dashboard_support import IMG_PAYLOAD, SCRIPT_PAYLOAD
from memwarden import Memwarden, Settings
from memwarden.audit.actor import acting_as
from memwarden.core.provenance import Scopes

SHOTS = Path(__file__).resolve().parent / "screenshots"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium() -> str:
    found = shutil.which("chromium")
    if found is None:
        reason = "no `chromium` on PATH (make test installs Debian's chromium)"
        if IN_CI:
            pytest.fail(f"CI=true and {reason}", pytrace=False)
        pytest.skip(f"SKIPPING THE BROWSER TESTS — {reason}")
    return found


@dataclass
class Stack:
    url: str
    browser: Browser
    tokens: dict[str, str]
    ids: dict[str, int]
    settings: Settings

    def page(self) -> Page:
        """A fresh browser context (no cookies), and a page that fails fast."""
        context = self.browser.new_context(viewport={"width": 1400, "height": 900})
        page = context.new_page()
        page.set_default_timeout(10_000)
        return page

    def sign_in(self, role: str) -> Page:
        page = self.page()
        page.goto(f"{self.url}/dashboard/")
        page.fill("#key", self.tokens[role])
        page.click("button[type=submit]")
        page.wait_for_url(f"{self.url}/dashboard/")
        return page


def _seed(settings: Settings) -> tuple[dict[str, str], dict[str, int]]:
    with Memwarden.init(settings) as mw:
        tokens = {
            "admin": mw.create_key("ops-admin", "admin")[1],
            # a person triaging with a write key granted the promote scope
            "write": mw.create_key(
                "triager", "write", replace(Scopes.for_role("write"), promote=True, reject=True)
            )[1],
        }
        mw.add_project("atlas-rocket")
        with acting_as("cli:ines"):
            window = mw.remember(
                "atlas-rocket", "The launch window opens 9 June", type="project", status="active"
            ).memory
            mw.update(window.id, content="The launch window opens 16 June", note="slip")
            mw.update(window.id, confidence=0.9, note="two sources agree")
        with acting_as("extractor:rules"):
            candidate = mw.remember("atlas-rocket", "We decided to use PostgreSQL 16.").memory
            script = mw.remember("atlas-rocket", SCRIPT_PAYLOAD).memory
            image = mw.remember("atlas-rocket", IMG_PAYLOAD, type="preference").memory
        mw.alerts.emit("warning", "Candidate queue above 200", "The triage queue holds 214.")
        mw.alerts.emit("critical", "<script>window.__pwned=3</script>", IMG_PAYLOAD)
        assert mw.alerts.flush()
    ids = {"window": window.id, "candidate": candidate.id, "script": script.id, "image": image.id}
    return tokens, ids


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    executable = chromium()
    settings = Settings(home=tmp_path_factory.mktemp("browser") / "home")
    tokens, ids = _seed(settings)
    SHOTS.mkdir(exist_ok=True)
    server = Server(settings)
    try:
        server.wait_ready()
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
            try:
                yield Stack(server.url, browser, tokens, ids, settings)
            finally:
                browser.close()
    finally:
        server.stop()


def shoot(page: Page, name: str) -> None:
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def test_sign_in_and_overview(stack: Stack) -> None:
    page = stack.page()
    page.goto(f"{stack.url}/dashboard/")
    assert "/dashboard/login" in page.url
    shoot(page, "login")
    page.fill("#key", stack.tokens["admin"][:-4] + "AAAA")
    page.click("button[type=submit]")
    assert "unknown API key" in page.inner_text(".error[role=alert]")
    page.fill("#key", stack.tokens["admin"])
    page.click("button[type=submit]")
    page.wait_for_url(f"{stack.url}/dashboard/")
    assert page.inner_text("#tile-memories .big") == "4"
    assert page.inner_text("#tile-queue .big") == "3"
    assert "ops-admin" in page.inner_text(".who")
    assert page.evaluate("document.cookie") == ""  # HttpOnly: no script could read it
    assert page.locator("#chart-mutations svg rect").count() == 30
    shoot(page, "overview")
    page.context.close()


def test_triage_promote_is_recorded_as_the_signed_in_key(stack: Stack) -> None:
    page = stack.sign_in("write")
    page.click("nav >> text=Triage")
    card = page.locator(f"#candidate-{stack.ids['candidate']}")
    shoot(page, "triage")
    card.locator("input[name=note]").fill("confirmed in the design review")
    card.locator("button:has-text('Promote')").click()
    assert page.inner_text(".flash") == (
        f"Memory #{stack.ids['candidate']} promoted as api:triager."
    )
    assert page.locator(f"#candidate-{stack.ids['candidate']}").count() == 0
    page.click("nav >> text=Audit")
    page.select_option("select[name=action]", "promoted")
    page.click("button:has-text('Apply')")
    row = page.locator("#entries tbody tr").first
    assert (
        "api:triager" in row.inner_text()
        and f"memory #{stack.ids['candidate']}" in row.inner_text()
    )
    assert "confirmed in the design review" in row.inner_text()
    shoot(page, "audit")
    # a write key triages but does not revert
    page.goto(f"{stack.url}/dashboard/memory/{stack.ids['window']}")
    assert page.locator("a:has-text('Revert to this version')").count() == 0
    page.context.close()


def test_revert_from_the_memory_page(stack: Stack) -> None:
    page = stack.sign_in("admin")
    page.fill("header input[name=id]", str(stack.ids["window"]))
    page.click("header button:has-text('Open')")
    assert page.inner_text("#memory-content") == "The launch window opens 16 June"
    assert page.locator("#timeline li").count() == 3
    shoot(page, "memory")
    page.locator("#timeline li").last.locator("a:has-text('Revert to this version')").click()
    assert "Revert memory" in page.inner_text("h1")
    assert "The launch window opens 9 June" in page.inner_text("table.diff")
    page.fill("#note", "undo the slip")
    shoot(page, "revert-confirm")
    page.click("button:has-text('Confirm revert')")
    assert "Reverted to the version" in page.inner_text(".flash")
    assert page.inner_text("#memory-content") == "The launch window opens 9 June"
    top = page.locator("#timeline li").first.inner_text()
    assert "reverted" in top and "api:ops-admin" in top and "undo the slip" in top
    shoot(page, "memory-reverted")
    page.context.close()


def test_hostile_content_executes_nothing(stack: Stack) -> None:
    page = stack.sign_in("admin")
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    paths = {
        "overview": "/dashboard/",
        "triage-hostile": "/dashboard/triage",
        "memory-script": f"/dashboard/memory/{stack.ids['script']}",
        "memory-image": f"/dashboard/memory/{stack.ids['image']}",
        "alerts": "/dashboard/alerts",
        "operations": "/dashboard/operations",
    }
    for name, path in paths.items():
        page.goto(f"{stack.url}{path}")
        page.wait_for_load_state("load")
        assert page.evaluate("window.__pwned") is None, name
        assert page.title() != "pwned" and page.title().endswith("· memwarden"), name
        assert page.locator("script").count() == 0, name
        if name in ("overview", "triage-hostile", "alerts"):
            shoot(page, name)
    page.goto(f"{stack.url}/dashboard/memory/{stack.ids['script']}")
    assert page.inner_text("#memory-content") == SCRIPT_PAYLOAD
    page.goto(f"{stack.url}/dashboard/memory/{stack.ids['image']}")
    assert page.inner_text("#memory-content") == IMG_PAYLOAD
    assert page.locator("img").count() == 0
    assert dialogs == []
    page.context.close()
