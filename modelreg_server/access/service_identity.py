"""A service's own identity towards the other service: a service user and an API token of it.

Both services share the access database, so a service mints its token there directly at start:
there is no secret to configure or hand over. The token expires after
:data:`SERVICE_TOKEN_SECONDS` and is re-minted once half of that has passed, so no call ever
carries an expired one; each replica (and each restart) mints its own.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from typing import Protocol

from modelreg_server.access import tokens
from modelreg_server.access.service import TokenStore
from modelreg_server.context import CallContext

SERVICE_TOKEN_SECONDS = 7 * 24 * 3600


class ServiceTokens(TokenStore, Protocol):
    """What minting needs of the access store."""

    def ensure_service_user(self, name: str, ctx: CallContext) -> None: ...


class ServiceIdentity:
    """Call it for the current bearer token of service user ``name`` (created if missing)."""

    def __init__(
        self,
        store: ServiceTokens,
        name: str,
        lifetime_seconds: float = SERVICE_TOKEN_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.name = name
        self._store = store
        self._lifetime = lifetime_seconds
        self._clock = clock
        self._lock = threading.Lock()
        store.ensure_service_user(name, self._ctx())
        self._secret, self._renew_at = self._mint()

    def _ctx(self) -> CallContext:
        return CallContext(actor=self.name, request_id=uuid.uuid4().hex)

    def _mint(self) -> tuple[str, float]:
        now = self._clock()
        new = tokens.new_token()
        self._store.create_token(
            self.name,
            token_id=new.id,
            secret_hash=new.secret_hash,
            description=f"{self.name}'s own token (minted by the service)",
            expires_at=int((now + self._lifetime) * 1000),
            ctx=self._ctx(),
        )
        return new.secret, now + self._lifetime / 2

    def __call__(self) -> str:
        if self._clock() >= self._renew_at:
            with self._lock:
                if self._clock() >= self._renew_at:  # another thread may have re-minted meanwhile
                    self._secret, self._renew_at = self._mint()
        return self._secret
