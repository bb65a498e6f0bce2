"""Doctor checks for API keys after the scopes came in (migration 0014_provenance).

A write key made before scopes existed keeps working, but since the upgrade it writes
candidates only: it can no longer write active memories, promote, reject or change project
state unless an admin grants it those scopes (`memwarden key grant NAME --scope ...`). The
doctor names every such key, so nobody is surprised by the change.
"""

from __future__ import annotations

from collections.abc import Iterable

from memwarden.core.doctor import Check, CheckResult, DoctorContext

NAME = "keys:scopes"


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


CHECKS: list[Check] = [check_legacy_write_keys]
