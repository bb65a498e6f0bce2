"""The keyed hash chain: canonical encodings, the key outside the database, and tags.

A row's tag is HMAC-SHA256(key, header) where the header is the canonical JSON (sorted keys,
no whitespace, UTF-8) of its sequence number, entity, project, action, actor, timestamp, the
keyed digest of its payload and the previous row's tag. The key never enters the database, so
an attacker who can rewrite the tables cannot recompute the chain after an edit.
"""

from __future__ import annotations

import json
import os
import secrets
from binascii import b2a_hex
from datetime import UTC, datetime
from hashlib import sha256
from json.encoder import encode_basestring
from pathlib import Path
from typing import Any

from memwarden.errors import LedgerError
from memwarden.private_files import private_dir

GENESIS_TAG = "0" * 64
KEY_BYTES = 32


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def format_ts(moment: datetime) -> str:
    """Fixed-width UTC timestamp with microseconds: sorts as text, encodes one way only."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_ts(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def header_bytes(
    seq: int,
    entity_type: str,
    entity_id: str,
    project: str | None,
    action: str,
    actor: str,
    ts: str,
    payload_digest: str,
    prev_tag: str,
) -> bytes:
    """Canonical JSON of the tagged fields, built without a generic encoder because verify
    runs it once per row; equal to ``canonical_json`` of the same dict (a test holds it so)."""
    project_json = "null" if project is None else encode_basestring(project)
    return (
        f'{{"action":{encode_basestring(action)},"actor":{encode_basestring(actor)},'
        f'"digest":"{payload_digest}","entity_id":{encode_basestring(entity_id)},'
        f'"entity_type":{encode_basestring(entity_type)},"prev":"{prev_tag}",'
        f'"project":{project_json},"seq":{int(seq)},"ts":"{ts}"}}'
    ).encode()


class ChainKey:
    """The HMAC key, read from a file kept outside the database."""

    def __init__(self, secret: bytes) -> None:
        if len(secret) < 16:
            raise LedgerError("the ledger key is too short (at least 16 bytes)")
        self._secret = secret
        # HMAC-SHA256 (RFC 2104) with the key's inner and outer hash states made once:
        # hmac.digest() would set the key up again on every call, and verify tags two
        # messages per row.
        block = (sha256(secret).digest() if len(secret) > 64 else secret).ljust(64, b"\0")
        self._inner = sha256(bytes(byte ^ 0x36 for byte in block))
        self._outer = sha256(bytes(byte ^ 0x5C for byte in block))

    def __reduce__(self) -> tuple[type[ChainKey], tuple[bytes]]:
        # Hash states do not pickle; a worker process of a parallel verify rebuilds them.
        return (ChainKey, (self._secret,))

    def tag(self, header: bytes) -> str:
        return self._hmac(header).hex()

    def payload_digest(self, body: str) -> str:
        return self._hmac(body.encode("utf-8")).hex()

    def hex_mac(self, message: bytes) -> bytes:
        """``tag`` or ``payload_digest`` of bytes, as ASCII bytes: for the verify walk, which
        reads text as bytes."""
        return b2a_hex(self._hmac(message))

    def hmac_states(self) -> tuple[Any, Any]:
        """The inner and outer hash states (the key already absorbed), for a loop that inlines
        ``_hmac``: copy each, never update it in place."""
        return self._inner, self._outer

    def _hmac(self, message: bytes) -> bytes:
        inner = self._inner.copy()
        inner.update(message)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.digest()

    def derived(self, label: bytes) -> ChainKey:
        """A key of its own for another use (row MACs): HMAC(key, label), so a MAC made with
        it can never double as a chain tag or a payload digest."""
        return ChainKey(self._hmac(label))

    def fingerprint(self) -> str:
        """Names the key without revealing it, so a witness can say which key it was made with."""
        return sha256(b"memwarden-key-id:" + self._secret).hexdigest()[:16]

    @classmethod
    def load(cls, path: Path) -> ChainKey:
        if not path.exists():
            raise LedgerError(
                f"the ledger key {path} is missing: restore it from your backup (the ledger "
                "cannot be verified or extended without it), or point MEMWARDEN_LEDGER_KEY_FILE "
                "at it"
            )
        try:
            raw = path.read_bytes().strip()
            return cls(bytes.fromhex(raw.decode("ascii")))
        except (ValueError, UnicodeDecodeError) as exc:
            raise LedgerError(f"the ledger key {path} is not a hex-encoded key") from exc

    @classmethod
    def create(cls, path: Path) -> ChainKey:
        """Write a new random key with owner-only permissions; never overwrite one."""
        private_dir(path.parent)
        secret = secrets.token_bytes(KEY_BYTES)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secret.hex() + "\n")
        return cls(secret)
