"""C2SP signed notes (https://c2sp.org/signed-note) with Ed25519, and the checkpoints
(https://c2sp.org/tlog-checkpoint) and receipts written in them.

Standalone: the standard library and ``cryptography`` only. The formats are Go's
``golang.org/x/mod/sumdb/note``: a verifier key is ``<name>+<key hash>+<base64(0x01 || public
key)>``, a signer key ``PRIVATE+KEY+<name>+<key hash>+<base64(0x01 || seed)>``, the key hash
the first four bytes of ``SHA-256(name || "\\n" || 0x01 || public key)``, and a signature line
``— <name> <base64(key hash || signature)>`` below the text and one blank line.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from hashlib import sha256
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

ALG_ED25519 = 1
SIGNATURE_PREFIX = "— "  # an em dash and a space
RECEIPT_HEADER = "memwarden-receipt/v1"


class NoteError(ValueError):
    """A malformed note or key, or a signature that does not verify."""


def _key_hash(name: str, public: bytes) -> bytes:
    return sha256(name.encode() + b"\n" + bytes([ALG_ED25519]) + public).digest()[:4]


def _check_name(name: str) -> None:
    if not name or any(c.isspace() for c in name) or "+" in name:
        raise NoteError(f"a key name must be non-empty, without spaces or '+': {name!r}")


def _b64decode(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise NoteError(f"{what} is not base64") from exc


@dataclass(frozen=True)
class Verifier:
    name: str
    key_hash: bytes
    public: Ed25519PublicKey

    @classmethod
    def parse(cls, vkey: str) -> Verifier:
        parts = vkey.strip().split("+", 2)
        if len(parts) != 3 or len(parts[1]) != 8:
            raise NoteError(f"malformed verifier key {vkey.strip()!r}: expected NAME+HASH+KEY")
        name, hash_hex, material = parts
        _check_name(name)
        raw = _b64decode(material, "the verifier key")
        if len(raw) != 33 or raw[0] != ALG_ED25519:
            raise NoteError("the verifier key is not an Ed25519 key (algorithm 1, 32 bytes)")
        try:
            key_hash = bytes.fromhex(hash_hex)
        except ValueError as exc:
            raise NoteError("the verifier key's hash is not hex") from exc
        if key_hash != _key_hash(name, raw[1:]):
            raise NoteError("the verifier key's hash does not match its name and key")
        return cls(name, key_hash, Ed25519PublicKey.from_public_bytes(raw[1:]))

    def text(self) -> str:
        public = self.public.public_bytes(Encoding.Raw, PublicFormat.Raw)
        material = base64.b64encode(bytes([ALG_ED25519]) + public).decode()
        return f"{self.name}+{self.key_hash.hex()}+{material}"

    def verify(self, message: bytes, signature: bytes) -> bool:
        try:
            self.public.verify(signature, message)
        except InvalidSignature:
            return False
        return True


@dataclass(frozen=True)
class Signer:
    name: str
    private: Ed25519PrivateKey

    @classmethod
    def generate(cls, name: str) -> Signer:
        _check_name(name)
        return cls(name, Ed25519PrivateKey.generate())

    @classmethod
    def parse(cls, skey: str) -> Signer:
        parts = skey.strip().split("+", 4)
        if len(parts) != 5 or parts[0] != "PRIVATE" or parts[1] != "KEY":
            raise NoteError("malformed signer key: expected PRIVATE+KEY+NAME+HASH+KEY")
        name, hash_hex, material = parts[2], parts[3], parts[4]
        _check_name(name)
        raw = _b64decode(material, "the signer key")
        if len(raw) != 33 or raw[0] != ALG_ED25519:
            raise NoteError("the signer key is not an Ed25519 key (algorithm 1, 32 bytes)")
        signer = cls(name, Ed25519PrivateKey.from_private_bytes(raw[1:]))
        if signer.verifier().key_hash.hex() != hash_hex.lower():
            raise NoteError("the signer key's hash does not match its name and key")
        return signer

    def verifier(self) -> Verifier:
        public = self.private.public_key()
        raw = public.public_bytes(Encoding.Raw, PublicFormat.Raw)
        return Verifier(self.name, _key_hash(self.name, raw), public)

    def text(self) -> str:
        from cryptography.hazmat.primitives.serialization import NoEncryption, PrivateFormat

        seed = self.private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        material = base64.b64encode(bytes([ALG_ED25519]) + seed).decode()
        return f"PRIVATE+KEY+{self.name}+{self.verifier().key_hash.hex()}+{material}"

    def sign(self, text: str) -> str:
        """The signed note of ``text`` (which must end with a newline)."""
        _check_text(text)
        signature = self.private.sign(text.encode())
        blob = base64.b64encode(self.verifier().key_hash + signature).decode()
        return f"{text}\n{SIGNATURE_PREFIX}{self.name} {blob}\n"


def _check_text(text: str) -> None:
    if not text.endswith("\n"):
        raise NoteError("a note's text must end with a newline")
    if "\n\n" in text or text.startswith("\n"):
        raise NoteError("a note's text must not hold a blank line")


def open_note(note: str, verifier: Verifier) -> str:
    """The text of ``note`` once a signature by ``verifier`` checks out; ``NoteError`` if none
    does (a missing signature, another key, or a text altered after signing)."""
    split = note.rfind("\n\n")
    if split < 0:
        raise NoteError("malformed note: no blank line before the signatures")
    text, signatures = note[: split + 1], note[split + 2 :]
    if not signatures.endswith("\n"):
        raise NoteError("malformed note: the last signature line has no newline")
    _check_text(text)
    parsed: list[tuple[str, bytes]] = []
    for line in signatures[:-1].split("\n"):
        if not line.startswith(SIGNATURE_PREFIX):
            raise NoteError(f"malformed signature line {line[:40]!r}")
        name, _, blob = line[len(SIGNATURE_PREFIX) :].partition(" ")
        _check_name(name)
        raw = _b64decode(blob, "a signature")
        if len(raw) < 5:
            raise NoteError("malformed signature: too short")
        parsed.append((name, raw))
    seen_names = [name for name, _raw in parsed]
    for name, raw in parsed:  # every line is well-formed before any signature counts
        if name == verifier.name and raw[:4] == verifier.key_hash:
            if verifier.verify(text.encode(), raw[4:]):
                return text
            raise NoteError(
                f"the signature by {name} does not verify: the note was altered after signing"
            )
    raise NoteError(
        f"the note carries no signature by {verifier.name}+{verifier.key_hash.hex()} "
        f"(signed by: {', '.join(seen_names) or 'nobody'})"
    )


@dataclass(frozen=True)
class Checkpoint:
    """A tree head in the C2SP tlog-checkpoint body: origin, size, base64 root, then
    extension lines (memwarden writes one, ``time <UTC ISO-8601>``)."""

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def text(self) -> str:
        lines = [self.origin, str(self.size), base64.b64encode(self.root).decode()]
        return "\n".join([*lines, *self.extensions]) + "\n"

    @property
    def time(self) -> str | None:
        for line in self.extensions:
            if line.startswith("time "):
                return line[5:]
        return None

    @classmethod
    def parse(cls, text: str) -> Checkpoint:
        lines = text.split("\n")
        if len(lines) < 4 or lines[-1] != "":
            raise NoteError("malformed checkpoint: expected origin, size and root lines")
        origin, size_text, root_text = lines[0], lines[1], lines[2]
        if not origin:
            raise NoteError("malformed checkpoint: empty origin line")
        if not size_text.isdigit() or (size_text != "0" and size_text.startswith("0")):
            raise NoteError(f"malformed checkpoint: tree size {size_text!r} is not a number")
        root = _b64decode(root_text, "the checkpoint's root hash")
        if len(root) != 32:
            raise NoteError("malformed checkpoint: the root hash is not 32 bytes")
        extensions = tuple(lines[3:-1])
        if any(not line for line in extensions):
            raise NoteError("malformed checkpoint: an empty extension line")
        return cls(origin, int(size_text), root, extensions)


def open_checkpoint(note: str, verifier: Verifier) -> Checkpoint:
    checkpoint = Checkpoint.parse(open_note(note, verifier))
    if checkpoint.origin != verifier.name:
        raise NoteError(
            f"the checkpoint is for log {checkpoint.origin!r}, but the key is {verifier.name!r}"
        )
    return checkpoint


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def sign_receipt(signer: Signer, receipt: dict[str, Any]) -> str:
    """A signed note whose text is a header line and the receipt's canonical JSON."""
    return signer.sign(f"{RECEIPT_HEADER}\n{canonical_json(receipt)}\n")


def open_receipt(note: str, verifier: Verifier) -> dict[str, Any]:
    text = open_note(note, verifier)
    header, _, body = text.partition("\n")
    if header != RECEIPT_HEADER or body.count("\n") != 1:
        raise NoteError("not a memwarden receipt")
    value = json.loads(body)
    if not isinstance(value, dict):
        raise NoteError("a receipt's body must be a JSON object")
    return value
