"""Dashboard sessions: a signed cookie naming the API key that signed in, never the key itself.

The cookie reads ``v1.<kind>.<key id>.<issued>.<nonce>.<signature>``: kind ``k`` (signed in
with the key of that id) or ``a`` (anonymous: before sign-in, or a server open on loopback),
the issue time, 16 random bytes, and an HMAC-SHA256 of all that under a secret kept in
``$MEMWARDEN_HOME/dashboard.key`` (made on first use, mode 0600; every worker sharing the home
shares it). Nothing is stored per session: the key is read again by id on every request, so
revoking it ends its sessions at once. A session lasts ``SESSION_SECONDS``.

The CSRF token of a session is another HMAC of its cookie: a page can only get it by being
served to the holder of the cookie, and it changes with every sign-in.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from memwarden.errors import StorageError
from memwarden.private_files import private_dir

COOKIE = "memwarden_session"
SESSION_SECONDS = 12 * 3600
SECRET_FILE = "dashboard.key"
SECRET_BYTES = 32
ANONYMOUS = "a"
SIGNED_IN = "k"


def same_text(expected: str, given: str) -> bool:
    """A constant-time comparison of a secret with what a client sent, whatever it sent:
    ``hmac.compare_digest`` raises on a str that is not ASCII (a 500 for a crafted form)."""
    return hmac.compare_digest(
        expected.encode("utf-8", "surrogatepass"), given.encode("utf-8", "surrogatepass")
    )


class SessionSecretError(StorageError):
    code = "dashboard_secret"


def load_secret(home: Path) -> bytes:
    """The signing secret under ``home``, created atomically by the first worker to ask."""
    path = home / SECRET_FILE
    for _ in range(3):
        try:
            text = path.read_text(encoding="ascii").strip()
        except FileNotFoundError:
            _create_secret(path)  # or another worker did: read whichever won
            continue
        except (OSError, UnicodeDecodeError) as exc:
            raise SessionSecretError(f"cannot read the dashboard secret {path}: {exc}") from exc
        try:
            secret = bytes.fromhex(text)
        except ValueError:
            secret = b""
        if len(secret) != SECRET_BYTES:
            raise SessionSecretError(
                f"the dashboard secret {path} is malformed: remove it (every session then ends)"
            )
        return secret
    raise SessionSecretError(f"the dashboard secret {path} could not be created")


def _create_secret(path: Path) -> None:
    """Write the secret to a private temporary file, then link it into place: the name
    appears with its whole content or not at all, and a second writer loses the race."""
    private_dir(path.parent)
    scratch = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(secrets.token_bytes(SECRET_BYTES).hex() + "\n")
        with contextlib.suppress(FileExistsError):
            os.link(scratch, path)
    finally:
        scratch.unlink(missing_ok=True)


@dataclass(frozen=True)
class Session:
    kind: str  # ANONYMOUS or SIGNED_IN
    key_id: int  # 0 when anonymous
    issued: int  # unix seconds
    nonce: str
    cookie: str  # the whole signed value, as sent

    @property
    def signed_in(self) -> bool:
        return self.kind == SIGNED_IN


class Sessions:
    """Issues and reads session cookies and their CSRF tokens under one secret."""

    def __init__(self, secret: bytes, lifetime: int = SESSION_SECONDS) -> None:
        self._secret = secret
        self.lifetime = lifetime

    def _sign(self, payload: str, purpose: str) -> str:
        message = f"{purpose}|{payload}".encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()

    def issue(self, key_id: int | None = None) -> Session:
        """A new session: signed in with ``key_id``, or anonymous when None."""
        kind = ANONYMOUS if key_id is None else SIGNED_IN
        issued = int(time.time())
        nonce = secrets.token_hex(16)
        payload = f"v1.{kind}.{key_id or 0}.{issued}.{nonce}"
        cookie = f"{payload}.{self._sign(payload, 'session')}"
        return Session(kind, key_id or 0, issued, nonce, cookie)

    def read(self, cookie: str | None) -> Session | None:
        """The session a cookie holds; None when it is absent, forged, malformed or expired."""
        if not cookie or len(cookie) > 200:
            return None
        payload, _, signature = cookie.rpartition(".")
        if not same_text(self._sign(payload, "session"), signature):
            return None
        parts = payload.split(".")
        if len(parts) != 5 or parts[0] != "v1" or parts[1] not in (ANONYMOUS, SIGNED_IN):
            return None
        _, kind, key_id, issued, nonce = parts
        if not (key_id.isdigit() and issued.isdigit()):
            return None
        age = time.time() - int(issued)
        if age < -60 or age > self.lifetime:  # a minute's grace for clocks between workers
            return None
        return Session(kind, int(key_id), int(issued), nonce, cookie)

    def csrf_token(self, session: Session) -> str:
        return self._sign(session.cookie, "csrf")

    def csrf_ok(self, session: Session, token: str | None) -> bool:
        return bool(token) and same_text(self.csrf_token(session), str(token))
