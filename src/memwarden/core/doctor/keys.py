"""Doctor checks for API keys made before a later change.

A write key made before scopes existed (migration 0014_provenance) keeps working, but since
the upgrade it writes candidates only: it can no longer write active memories, promote, reject
or change project state unless an admin grants it those scopes (`memwarden key grant NAME
--scope ...`). The doctor names every such key, so nobody is surprised by the change.

A key whose ledger record predates the token digest (session 21) is honoured as before, but a
token hash put in its row in the database would be too; the doctor names those keys, to be
made again.
"""

from __future__ import annotations

from collections.abc import Iterable

from memwarden.core.doctor import Check, CheckResult, DoctorContext

NAME = "keys:scopes"
TOKEN_NAME = "keys:token"


def check_legacy_write_keys(ctx: DoctorContext) -> Iterable[CheckResult]:
    missing = ctx.need_store(NAME)
    if missing is not None:
        yield missing
        return
    assert ctx.memwarden is not None
    keys = ctx.memwarden.list_keys(include_revoked=False)
    legacy = sorted(k.name for k in keys if k.role == "write" and k.scopes_json is None)
    data = {"legacy_write_keys": legacy}
    if legacy:
        yield CheckResult(
            NAME,
            "warn",
            f"{len(legacy)} write key(s) without explicit scopes ({', '.join(legacy)}): they "
            "write candidates only since the upgrade; grant more with "
            "`memwarden key grant NAME --scope write_active --scope promote` if they need it",
            data,
        )
        return
    yield CheckResult(NAME, "ok", f"{len(keys)} live key(s), every write key scoped", data)


def check_keys_unbound_to_token(ctx: DoctorContext) -> Iterable[CheckResult]:
    missing = ctx.need_store(TOKEN_NAME)
    if missing is not None:
        yield missing
        return
    assert ctx.memwarden is not None
    unbound = ctx.memwarden.keys_unbound_to_token()
    data = {"keys_unbound_to_token": unbound}
    if unbound:
        yield CheckResult(
            TOKEN_NAME,
            "warn",
            f"{len(unbound)} key(s) made before their ledger record tied their token "
            f"({', '.join(unbound)}): a token hash swapped in the database would be honoured; "
            "make each again (`memwarden key revoke NAME`, then `memwarden key create NAME`)",
            data,
        )
        return
    yield CheckResult(TOKEN_NAME, "ok", "every live key's token is tied to its ledger record", data)


CHECKS: list[Check] = [check_legacy_write_keys, check_keys_unbound_to_token]
