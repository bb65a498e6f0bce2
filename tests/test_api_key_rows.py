"""An API key is honoured only when its row is what its newest ledger record says: a key row
inserted, un-revoked, or given another role or scopes in the database by someone who cannot
write the ledger is refused (and raises the tampered-row alert). Before, such a minted key
wrote through memwarden under any name, with valid row MACs and tagged ledger rows, and could
promote memories to the verified tier from the dashboard (found by an attack session). Both
engines."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
import sqlalchemy as sa

from api_support import assert_error, client_for
from memwarden import Memwarden
from memwarden.core.provenance import Scopes
from memwarden.errors import ConflictError
from memwarden.observability.faults import faults

TOKEN = "mwk_deadbeef_AttackerSecretAttackerSecretAttacker01"


def sql(mw: Memwarden, statement: str, **params: object) -> None:
    with mw.store.write() as unit:
        unit.conn.execute(sa.text(statement), params)


def swap_hash(mw: Memwarden, name: str, token: str) -> None:
    """Put the hash of ``token`` in key ``name``'s row, as someone with the database would."""
    sql(
        mw,
        "UPDATE api_keys SET key_hash = :hash WHERE name = :name",
        hash=hashlib.sha256(token.encode()).hexdigest(),
        name=name,
    )


def write_with(mw: Memwarden, token: str) -> Any:
    """A memory written over HTTP with ``token``: the answer."""
    with client_for(mw) as client:
        return client.post(
            "/memory",
            json={"project": "atlas", "content": "Written with a key from the database"},
            headers={"Authorization": f"Bearer {token}"},
        )


def refused(mw: Memwarden, token: str) -> str:
    result = mw.authenticate(token)
    assert result.key is None, "the key was honoured"
    assert result.reason is not None
    return result.reason


def test_a_key_minted_in_the_database_is_refused(mw: Memwarden) -> None:
    sql(
        mw,
        "INSERT INTO api_keys (name, role, prefix, key_hash, created_at) "
        "VALUES ('ops-admin', 'admin', 'mwk_deadbeef', :hash, :at)",
        hash=hashlib.sha256(TOKEN.encode()).hexdigest(),
        at="2026-12-01 09:00:00",
    )
    assert "changed outside memwarden" in refused(mw, TOKEN)
    assert faults.is_active("tampered_row:api_key:ops-admin")
    answer = write_with(mw, TOKEN)
    assert answer.status_code == 401
    assert [m.content for m in mw.list_memories()] == []


def test_a_revoked_key_put_back_or_raised_in_role_is_refused(mw: Memwarden) -> None:
    _, old_token = mw.create_key("old-reader", "read")
    mw.revoke_key("old-reader")
    sql(mw, "UPDATE api_keys SET revoked_at = NULL WHERE name = 'old-reader'")
    assert "changed outside memwarden" in refused(mw, old_token)

    _, token = mw.create_key("reader", "read")
    assert mw.authenticate(token).key is not None  # honoured as written
    sql(mw, "UPDATE api_keys SET role = 'admin' WHERE name = 'reader'")
    assert "changed outside memwarden" in refused(mw, token)
    sql(mw, "UPDATE api_keys SET role = 'read' WHERE name = 'reader'")
    assert mw.authenticate(token).key is not None  # as the ledger says again


def test_keys_changed_through_memwarden_stay_honoured(mw: Memwarden) -> None:
    key, token = mw.create_key("writer", "write")
    assert mw.authenticate(token).key is not None
    mw.set_key_scopes("writer", Scopes.for_role("write"))
    assert mw.authenticate(token).key is not None
    mw.revoke_key("writer")
    assert "revoked" in (mw.authenticate(token).reason or "")
    _, again = mw.create_key("writer", "read")  # the name reused: the newest record rules
    assert mw.authenticate(again).key is not None
    assert not any(f.key.startswith("tampered_row:api_key") for f in faults.active())


def test_a_dashboard_session_does_not_turn_admin_when_its_row_is_raised(mw: Memwarden) -> None:
    """The dashboard reloads its session's key on every request: that read vouches for the
    row too (a review found it did not), so a session opened with a read key ends when the
    row is raised in the database; revoking the key ends the alert's episode."""
    from dashboard_support import dashboard_client, sign_in

    memory_id = mw.remember("atlas", "A candidate to triage").memory.id
    _, token = mw.create_key("reader", "read")
    with dashboard_client(mw) as client:
        assert sign_in(client, token).status_code == 303
        assert client.get("/dashboard/triage", follow_redirects=False).status_code == 200
        sql(mw, "UPDATE api_keys SET role = 'admin' WHERE name = 'reader'")
        away = client.get("/dashboard/triage", follow_redirects=False)
        assert away.status_code == 303 and away.headers["location"].startswith("/dashboard/login")
        promoted = client.post(f"/dashboard/triage/{memory_id}/promote", follow_redirects=False)
        assert promoted.status_code in (303, 401, 403)
    assert mw.get(memory_id).status == "candidate"
    assert faults.is_active("tampered_row:api_key:reader")
    mw.revoke_key("reader")
    assert not faults.is_active("tampered_row:api_key:reader")


def _attacker_token_for(prefix: str) -> str:
    """A token of the attacker's own with the key's public id (read from the row)."""
    return f"{prefix}_AttackerSecretAttackerSecretAttacker02"


def test_a_key_whose_token_hash_alone_was_swapped_is_refused(mw: Memwarden) -> None:
    """Someone who can write the database but not the ledger puts the hash of a token of
    their own in an admin key's row: that token must not become the admin key. Before, the
    snapshot left the hash out and the swapped key was honoured (left open in session 13)."""
    key, token = mw.create_key("ops", "admin")
    assert mw.authenticate(token).key is not None
    swapped = _attacker_token_for(key.prefix)
    original = hashlib.sha256(token.encode()).hexdigest()
    swap_hash(mw, "ops", swapped)
    assert "changed outside memwarden" in refused(mw, swapped)
    assert faults.is_active("tampered_row:api_key:ops")
    answer = write_with(mw, swapped)
    assert "changed outside memwarden" in assert_error(answer, 401, "unauthorized")["message"]
    assert mw.list_memories() == []
    sql(mw, "UPDATE api_keys SET key_hash = :hash WHERE name = 'ops'", hash=original)
    assert mw.authenticate(token).key is not None  # the row is what the ledger says again


def test_the_ledger_records_a_digest_of_the_token_hash_not_the_hash(mw: Memwarden) -> None:
    key, token = mw.create_key("writer", "write")
    stored = hashlib.sha256(token.encode()).hexdigest()
    (created,) = mw.recent(entity_type="api_key")
    assert created.after is not None and "token_digest" in created.after
    assert stored not in json.dumps(created.after)
    assert "token_digest" not in key.to_dict()  # what people are shown
    mw.set_key_scopes("writer", Scopes.for_role("write"))
    revoked = mw.revoke_key("writer")
    newest = mw.recent(entity_type="api_key")[0]
    assert newest.action == "revoked"
    assert newest.before is not None and newest.after is not None
    assert (
        newest.before["token_digest"]
        == newest.after["token_digest"]
        == created.after["token_digest"]
    )
    assert revoked.revoked


def _legacy_key(mw: Memwarden, name: str, token: str) -> None:
    """A key made as before the token digest: its ledger record has no ``token_digest``."""
    from memwarden.core import keys

    rt = mw.runtime
    with rt.mutation() as m:
        key_id = m.conn.execute(
            sa.insert(keys.K)
            .values(
                name=name,
                role="admin",
                prefix=token[:12],
                key_hash=hashlib.sha256(token.encode()).hexdigest(),
                created_at=m.now,
                scopes=Scopes.for_role("admin").to_json(),
            )
            .returning(keys.K.c.id)
        ).scalar_one()
        legacy = keys.ApiKey(
            int(key_id), name, "admin", token[:12], m.now, None, Scopes.for_role("admin").to_json()
        )
        assert "token_digest" not in legacy.snapshot()
        m.record("api_key", name, None, "created", None, legacy.snapshot())


def test_doctor_names_keys_made_before_the_token_digest(mw: Memwarden) -> None:
    from memwarden.core.doctor import DoctorContext
    from memwarden.core.doctor.keys import check_keys_unbound_to_token

    def token_check() -> tuple[str, str]:
        (result,) = check_keys_unbound_to_token(DoctorContext(mw.settings, mw, None))
        return result.status, result.detail

    mw.create_key("fresh", "read")
    assert token_check()[0] == "ok"
    old = "mwk_0badc0de_LegacyLegacyLegacyLegacyLegacyLegacy01"
    _legacy_key(mw, "old-admin", old)
    assert mw.authenticate(old).key is not None  # honoured, as before the change
    status, detail = token_check()
    assert status == "warn" and "old-admin" in detail and "fresh" not in detail
    mw.revoke_key("old-admin")
    _, again = mw.create_key("old-admin", "admin")
    assert mw.authenticate(again).key is not None
    assert token_check()[0] == "ok"


def test_a_swapped_hash_is_never_laundered_by_a_grant_and_alerts_on_the_owners_token(
    mw: Memwarden,
) -> None:
    """A review found a grant took the swapped row's word: its record then bound the
    attacker's hash to the key, and the owner's token failed as merely unknown, with no
    alert."""
    key, token = mw.create_key("ops", "write")
    swapped = _attacker_token_for(key.prefix)
    swap_hash(mw, "ops", swapped)
    assert mw.authenticate(token).key is None  # the owner's token no longer matches...
    assert faults.is_active("tampered_row:api_key:ops")  # ...and that is said at once
    with pytest.raises(ConflictError, match="changed outside memwarden"):
        mw.set_key_scopes("ops", Scopes.for_role("write"))
    assert mw.recent(entity_type="api_key")[0].action == "created"  # nothing recorded
    assert "changed outside memwarden" in refused(mw, swapped)
    mw.revoke_key("ops")  # the operator's answer still works
    assert not faults.is_active("tampered_row:api_key:ops")


def test_a_key_hash_of_another_alphabet_is_refused_cleanly(mw: Memwarden) -> None:
    key, _ = mw.create_key("ops", "read")
    sql(mw, "UPDATE api_keys SET key_hash = 'ünïcödé' WHERE name = 'ops'")
    assert refused(mw, _attacker_token_for(key.prefix)) == "unknown API key"
