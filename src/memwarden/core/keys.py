"""API keys: a name, a role, and only the hash of a high-entropy token.

A key reads ``mwk_<8 hex>_<secret>``. The 8 hex digits are a public id (the stored ``prefix``)
used to find the row; the whole token is then checked by comparing SHA-256 digests in
constant time. The plaintext is shown once, when the key is made, and never stored.
Creating and revoking a key are ledger entries (entity ``api_key``, id the key's name).

A key is honoured only when its row is what its newest ledger record says (``_vouched``): a
row inserted, un-revoked, given another role or scopes, or another token's hash in the
database, by someone who cannot write the ledger, is refused and raises the tampered-row alert.
The snapshot carries a digest of the token's hash (``token_digest``), not the hash itself. A
key whose newest record predates that digest cannot have its hash checked: the doctor names
such keys, to be made again.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import Row, insert, select, update
from sqlalchemy.exc import IntegrityError

from memwarden.audit import records
from memwarden.core.provenance import AGENT, PERSON, Principal, Scopes
from memwarden.core.runtime import Runtime
from memwarden.db import schema
from memwarden.errors import ConflictError, InvalidInputError, NotFoundError

K = schema.api_keys
ROLES = ("read", "write", "admin")  # each role may do everything the ones before it may
KEY_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,99}$")
TOKEN = re.compile(r"^mwk_([0-9a-f]{8})_([A-Za-z0-9_-]{32,128})$")
_DUMMY_HASH = hashlib.sha256(b"memwarden: no such key").hexdigest()
_TOKEN_DIGEST_LABEL = b"memwarden api key token v1\x00"


@dataclass(frozen=True)
class ApiKey:
    id: int
    name: str
    role: str
    prefix: str
    created_at: datetime
    revoked_at: datetime | None
    scopes_json: str | None = None
    # Of the stored token hash (``token_digest``); None only for a key built without its row.
    token_digest: str | None = None

    @property
    def scopes(self) -> Scopes:
        """The explicit grants, or the role's defaults (a write key writes candidates only)."""
        return Scopes.from_json(self.scopes_json, self.role)

    def principal(self, *, person: bool = False) -> Principal:
        """The key as a principal: an agent, or a person signed in to the dashboard."""
        return Principal(PERSON if person else AGENT, self.name, self.scopes)

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    @property
    def actor(self) -> str:
        return f"api:{self.name}"

    def allows(self, role: str) -> bool:
        return ROLES.index(self.role) >= ROLES.index(role)

    @classmethod
    def from_row(cls, row: Row[Any]) -> ApiKey:
        return cls(
            int(row.id),
            row.name,
            row.role,
            row.prefix,
            row.created_at,
            row.revoked_at,
            getattr(row, "scopes", None),
            token_digest(row.key_hash),
        )

    def to_dict(self) -> dict[str, Any]:
        """The key as shown to people."""
        return {
            "id": self.id,
            "name": self.name,
            "role": self.role,
            "prefix": self.prefix,
            "created_at": self.created_at.isoformat(),
            "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None,
            "scopes": self.scopes.to_dict(),
        }

    def snapshot(self) -> dict[str, Any]:
        """The key as its ledger rows record it: what is shown, and the token digest that
        ties the row's hash to the record."""
        data = self.to_dict()
        if self.token_digest is not None:
            data["token_digest"] = self.token_digest
        return data


@dataclass(frozen=True)
class AuthResult:
    """What a presented token turned out to be: a live key, a revoked one, or nothing."""

    key: ApiKey | None
    reason: str | None = None  # why it was refused

    @property
    def ok(self) -> bool:
        return self.key is not None and self.reason is None


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def token_digest(key_hash: str) -> str:
    """What a key's ledger snapshot records of its stored token hash. A hash put in the row
    in place of the real one no longer matches it; the hash itself stays out of the ledger,
    whose history is shown and exported."""
    return hashlib.sha256(
        _TOKEN_DIGEST_LABEL + str(key_hash).encode("utf-8", "replace")
    ).hexdigest()


def check_role(role: str) -> str:
    if role not in ROLES:
        raise InvalidInputError(f"unknown role {role!r}: one of {', '.join(ROLES)}")
    return role


def check_name(name: str) -> str:
    if not isinstance(name, str) or not KEY_NAME.match(name):
        raise InvalidInputError(
            f"invalid key name {name!r}: 1-100 letters, digits, '.', '_', '@' or '-', "
            "starting with a letter or digit"
        )
    return name


def check_scopes(role: str, scopes: Scopes | None) -> str | None:
    """The JSON to store for explicit grants; a read key cannot be granted writing."""
    if scopes is None:
        return None
    if role == "read" and (scopes.write or scopes.granted()):
        raise InvalidInputError("a read key cannot be granted writes: give it the write role")
    return scopes.to_json()


def create(rt: Runtime, name: str, role: str, scopes: Scopes | None = None) -> tuple[ApiKey, str]:
    """Make a key; returns it and its plaintext token, which is never stored."""
    check_name(name)
    check_role(role)
    # Stored explicitly even when they are the role's defaults: a key with no stored scopes
    # is one made before scopes existed (the doctor names those).
    scopes_json = check_scopes(role, scopes if scopes is not None else Scopes.for_role(role))
    for _ in range(5):  # an 8-hex id collides rarely; try again with another
        kid = secrets.token_hex(4)
        token = f"mwk_{kid}_{secrets.token_urlsafe(32)}"
        with rt.mutation() as m:
            live = m.conn.execute(
                select(K.c.id).where(K.c.name == name, K.c.revoked_at.is_(None))
            ).first()
            if live is not None:
                raise ConflictError(f"a live key named {name!r} exists: revoke it first")
            if m.conn.execute(select(K.c.id).where(K.c.prefix == f"mwk_{kid}")).first():
                continue
            try:
                with m.conn.begin_nested():
                    key_id = m.conn.execute(
                        insert(K)
                        .values(
                            name=name,
                            role=role,
                            prefix=f"mwk_{kid}",
                            key_hash=digest(token),
                            created_at=m.now,
                            revoked_at=None,
                            scopes=scopes_json,
                        )
                        .returning(K.c.id)
                    ).scalar_one()
            except IntegrityError as exc:
                raise ConflictError(f"a live key named {name!r} exists: revoke it first") from exc
            key = ApiKey(
                int(key_id),
                name,
                role,
                f"mwk_{kid}",
                m.now,
                None,
                scopes_json,
                token_digest(digest(token)),
            )
            m.record("api_key", name, None, "created", None, key.snapshot())
            return key, token
    raise ConflictError("could not draw an unused key id: try again")


def list_keys(rt: Runtime, *, include_revoked: bool = True) -> list[ApiKey]:
    query = select(K).order_by(K.c.name, K.c.id)
    if not include_revoked:
        query = query.where(K.c.revoked_at.is_(None))
    with rt.read() as conn:
        return [ApiKey.from_row(row) for row in conn.execute(query)]


def revoke(rt: Runtime, name: str) -> ApiKey:
    with rt.mutation() as m:
        row = m.conn.execute(
            select(K).where(K.c.name == name, K.c.revoked_at.is_(None)).with_for_update()
        ).first()
        if row is None:
            raise NotFoundError(f"no live key named {name!r}")
        before = ApiKey.from_row(row)
        m.conn.execute(update(K).where(K.c.id == before.id).values(revoked_at=m.now))
        after = replace(before, revoked_at=m.now)
        m.record("api_key", name, None, "revoked", before.snapshot(), after.snapshot())
    # A key refused as changed outside memwarden: revoking it is the operator's answer.
    rt.guard.restored("api_key", name)
    return after


def set_scopes(rt: Runtime, name: str, scopes: Scopes) -> ApiKey:
    """Replace a live key's grants (an audited change: entity ``api_key``, action ``scoped``)."""
    with rt.mutation() as m:
        row = m.conn.execute(
            select(K).where(K.c.name == name, K.c.revoked_at.is_(None)).with_for_update()
        ).first()
        if row is None:
            raise NotFoundError(f"no live key named {name!r}")
        if not _vouched(rt, row):
            # Its record would take the row's word, a swapped token hash included.
            raise ConflictError(
                f"the API key {name!r} was changed outside memwarden (its row does not match "
                "its ledger record): not granted; revoke it and make another"
            )
        before = ApiKey.from_row(row)
        scopes_json = check_scopes(before.role, scopes)
        m.conn.execute(update(K).where(K.c.id == before.id).values(scopes=scopes_json))
        after = replace(before, scopes_json=scopes_json)
        m.record("api_key", name, None, "scoped", before.snapshot(), after.snapshot())
        return after


def get(rt: Runtime, key_id: int) -> ApiKey | None:
    """The key with this id, revoked or not (a dashboard session names its key by id, on every
    request): None for a live key whose row its ledger record does not vouch for, as
    ``authenticate`` refuses it (a session opened with a read key must not turn admin when
    the row is raised in the database)."""
    with rt.read() as conn:
        row = conn.execute(select(K).where(K.c.id == key_id)).first()
    if row is None:
        return None
    key = ApiKey.from_row(row)
    if not key.revoked and not _vouched(rt, row):
        return None
    return key


def any_live(rt: Runtime) -> bool:
    with rt.read() as conn:
        return (
            conn.execute(select(K.c.id).where(K.c.revoked_at.is_(None)).limit(1)).first()
            is not None
        )


def unbound_to_token(rt: Runtime) -> list[str]:
    """Live keys whose newest ledger record predates the token digest: a token hash put in
    their row would go unnoticed until they are made again (revoke, then create)."""
    names = []
    with rt.read() as conn:
        for name in conn.execute(
            select(K.c.name).where(K.c.revoked_at.is_(None)).order_by(K.c.name)
        ).scalars():
            record = records.latest(conn, "api_key", name, rt.ledger.key)
            if (
                record is not None
                and record.after is not None
                and "token_digest" not in record.after
            ):
                names.append(name)
    return names


def authenticate(rt: Runtime, token: str) -> AuthResult:
    """Find the key a token belongs to; the digests are compared in constant time."""
    match = TOKEN.match(token.strip()) if isinstance(token, str) else None
    presented = digest(token.strip()) if isinstance(token, str) else _DUMMY_HASH
    row = None
    if match is not None:
        with rt.store.read_each() as conn:  # on every API request: no transaction needed
            row = conn.execute(select(K).where(K.c.prefix == f"mwk_{match.group(1)}")).first()
    stored = str(row.key_hash).encode() if row is not None else _DUMMY_HASH.encode()
    if not hmac.compare_digest(stored, presented.encode()) or row is None:
        if row is not None and not row.revoked_at:
            # The owner's own token no longer matches: its hash may have been swapped in the
            # database. A row its record does not vouch for raises the tampered-row alert.
            _vouched(rt, row)
        return AuthResult(None, "unknown API key")
    key = ApiKey.from_row(row)
    if key.revoked:
        return AuthResult(key, f"the API key {key.name!r} was revoked")
    if not _vouched(rt, row):
        return AuthResult(
            None,
            f"the API key {key.name!r} was changed outside memwarden (its row does not match "
            "its ledger record): refused",
        )
    return AuthResult(key)


def _vouched(rt: Runtime, row: Any) -> bool:
    """Whether the key's row is what its newest ledger record (authentic) says it is: its id,
    name, role, prefix, scopes, token hash and whether it is revoked; one that is not is
    reported (the tampered-row alert). Remembered per row as read, so a key in use costs one
    ledger read per process, and any change of its row another."""
    seen = (row.id, row.name, row.role, row.prefix, row.key_hash, row.revoked_at, row.scopes)
    if rt.vouched_keys.get(int(row.id)) == seen:
        return True
    with rt.store.read_each() as conn:
        record = records.latest(conn, "api_key", row.name, rt.ledger.key)
    after = record.after if record is not None and record.authentic else None
    expected_scopes = after.get("scopes") if after is not None else None
    scopes = Scopes.from_json(row.scopes, row.role).to_dict() if row.scopes is not None else None
    vouched = (
        after is not None
        and after.get("id") == int(row.id)
        and after.get("name") == row.name
        and after.get("role") == row.role
        and after.get("prefix") == row.prefix
        and (after.get("revoked_at") is None) == (row.revoked_at is None)
        # A snapshot made before scopes existed has none, as has such a key's row.
        and (expected_scopes == scopes if "scopes" in after else row.scopes is None)
        # One made before the token digest existed cannot tie the hash (the doctor names it).
        and (
            "token_digest" not in after
            or hmac.compare_digest(str(after["token_digest"]), token_digest(row.key_hash))
        )
    )
    if vouched:
        rt.vouched_keys[int(row.id)] = seen
    else:
        rt.guard.report_key(row.name)
    return vouched
