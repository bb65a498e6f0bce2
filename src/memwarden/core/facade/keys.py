"""Facade methods: API keys and dashboard sessions (core/keys.py, core/signouts.py).

Not in the operation log: key plumbing runs on every authenticated request."""

from __future__ import annotations

from datetime import datetime

from memwarden.core import keys, signouts
from memwarden.core.facade.base import FacadeBase
from memwarden.core.provenance import Scopes


class KeysFacade(FacadeBase):
    def create_key(
        self, name: str, role: str, scopes: Scopes | None = None
    ) -> tuple[keys.ApiKey, str]:
        """A new key and its plaintext token (shown once; only its hash is stored)."""
        return keys.create(self.runtime, name, role, scopes)

    def set_key_scopes(self, name: str, scopes: Scopes) -> keys.ApiKey:
        return keys.set_scopes(self.runtime, name, scopes)

    def list_keys(self, *, include_revoked: bool = True) -> list[keys.ApiKey]:
        return keys.list_keys(self.runtime, include_revoked=include_revoked)

    def api_key(self, key_id: int) -> keys.ApiKey | None:
        """The API key with this id, revoked or not."""
        return keys.get(self.runtime, key_id)

    def revoke_key(self, name: str) -> keys.ApiKey:
        return keys.revoke(self.runtime, name)

    def authenticate(self, token: str) -> keys.AuthResult:
        return keys.authenticate(self.runtime, token)

    def keys_unbound_to_token(self) -> list[str]:
        """Live keys made before their ledger record tied their token hash."""
        return keys.unbound_to_token(self.runtime)

    def keys_configured(self) -> bool:
        return keys.any_live(self.runtime)

    def end_session(self, nonce: str, expires_at: datetime) -> None:
        """Sign a dashboard session out on the server (its cookie stops working at once)."""
        signouts.end(self.runtime, nonce, expires_at)

    def session_ended(self, nonce: str) -> bool:
        return signouts.ended(self.runtime, nonce)
