"""Dashboard sessions: the signing secret on disk, and cookies that cannot be forged, altered,
replayed past their lifetime, or used to mint another session's CSRF token."""

from __future__ import annotations

import stat
import threading
from pathlib import Path

import pytest

from memwarden.web.sessions import SECRET_FILE, Sessions, SessionSecretError, load_secret


def test_secret_is_private_and_made_once(tmp_path: Path) -> None:
    home = tmp_path / "home"
    found: list[bytes] = []
    threads = [threading.Thread(target=lambda: found.append(load_secret(home))) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(found)) == 1 and len(found[0]) == 32  # every racer reads the one winner
    path = home / SECRET_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in home.iterdir()) == [SECRET_FILE]  # no scratch file left
    assert load_secret(home) == found[0]
    path.write_text("not hex\n")
    with pytest.raises(SessionSecretError, match="malformed: remove it"):
        load_secret(home)


def test_cookies_hold_no_key_and_resist_tampering(tmp_path: Path) -> None:
    sessions = Sessions(load_secret(tmp_path))
    session = sessions.issue(42)
    assert session.signed_in and session.key_id == 42
    read = sessions.read(session.cookie)
    assert read is not None and (read.key_id, read.nonce) == (42, session.nonce)
    payload, _, signature = session.cookie.rpartition(".")
    for forged in (
        payload.replace(".k.42.", ".k.43.") + "." + signature,  # another key
        payload + "." + signature[:-1] + ("0" if signature[-1] != "0" else "1"),
        payload.replace("v1.", "v2.") + "." + signature,
        "",
        "x" * 500,
        session.cookie + ".extra",
    ):
        assert sessions.read(forged) is None, forged
    other = Sessions(load_secret(tmp_path / "elsewhere"))
    assert other.read(session.cookie) is None  # another server's secret


def test_expiry_and_csrf(tmp_path: Path) -> None:
    secret = load_secret(tmp_path)
    sessions = Sessions(secret)
    first, second = sessions.issue(), sessions.issue(7)
    assert not first.signed_in
    token = sessions.csrf_token(first)
    assert sessions.csrf_ok(first, token)
    assert not sessions.csrf_ok(second, token)  # a token belongs to its session
    assert not sessions.csrf_ok(first, "")
    assert not sessions.csrf_ok(first, None)
    assert sessions.read(first.cookie) is not None
    assert Sessions(secret, lifetime=-1).read(first.cookie) is None  # past its lifetime
