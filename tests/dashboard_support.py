"""Helpers the dashboard tests share: a client over the app on a loopback address, signing in
through the form, and reading pages with BeautifulSoup."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from bs4 import BeautifulSoup, Tag
from fastapi.testclient import TestClient

from memwarden import Memwarden
from memwarden.api import create_app

BASE = "http://127.0.0.1"  # the open dashboard answers only on loopback host names
# Memory content is hostile: each payload would run script if it reached the page as markup.
SCRIPT_PAYLOAD = '<script>window.__pwned=1;document.title="pwned"</script>Telemetry goes to PG'
IMG_PAYLOAD = "<img src=x onerror=\"window.__pwned=2;document.title='pwned'\"> Review on Fridays"


@contextmanager
def dashboard_client(mw: Memwarden, base_url: str = BASE, **options: Any) -> Iterator[TestClient]:
    app = create_app(memwarden=mw, **options)
    with TestClient(app, base_url=base_url, raise_server_exceptions=False) as client:
        yield client


def soup(response: httpx.Response) -> BeautifulSoup:
    assert response.headers["content-type"].startswith("text/html"), response.headers
    return BeautifulSoup(response.text, "html.parser")


def one(page: BeautifulSoup, selector: str) -> Tag:
    found = page.select_one(selector)
    assert found is not None, f"no {selector!r} in the page"
    return found


def csrf_of(page: BeautifulSoup) -> str:
    field = one(page, 'input[name="csrf"]')
    return str(field["value"])


def sign_in(client: TestClient, token: str, next: str = "/dashboard/") -> httpx.Response:
    """Open the sign-in form and post ``token`` through it; returns the (unfollowed) answer."""
    form = soup(client.get(f"/dashboard/login?next={next}"))
    return client.post(
        "/dashboard/login",
        data={
            "key": token,
            "csrf": csrf_of(form),
            "next": str(one(form, 'input[name="next"]')["value"]),
        },
        follow_redirects=False,
    )


def assert_no_markup_from(page: BeautifulSoup) -> None:
    """No script element, no event-handler attribute, no img at all: the pages use none."""
    assert page.find("script") is None
    assert page.find("img") is None
    for tag in page.find_all(True):
        assert not any(name.lower().startswith("on") for name in tag.attrs), tag
