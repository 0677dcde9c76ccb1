"""Who is calling: the bearer credential of a call → a :class:`Principal`, or UNAUTHENTICATED.

Kinds of credential, told apart by shape:
- modelreg API tokens (``mrt_<id>_<secret>``): one indexed read of the access database, then the
  answer is cached for :data:`CACHE_SECONDS`, the bound on how long a revoked or expired token,
  a disabled user or a changed group may still pass on any replica;
- the bootstrap admin token (MODELREG_BOOTSTRAP_ADMIN_TOKEN), compared in constant time;
- OIDC/JWT access tokens, verified against the provider's key set (:mod:`.oidc`). A user row of
  the same name, when there is one, adds its groups and admin flag, or disables the user.

A service principal (a user created as a service, authenticated by an API token: never an OIDC
login, whose name an identity provider may let anyone pick) may name the end user it acts for
(``x-modelreg-on-behalf-of``) on a call that only reads; the call then runs as that user, ``via``
the service. Anyone else naming an end user, or naming one on a call that writes, is refused:
the registry needs the end user only to read the run it registers, so a service token can never
write, grant or administer as somebody else.
"""

from __future__ import annotations

import hmac
import json
import time
from collections.abc import Callable
from typing import Protocol

from modelreg_server.access import tokens
from modelreg_server.access.entities import TokenOwner, User
from modelreg_server.access.oidc import OidcVerifier
from modelreg_server.access.policy import Principal, TtlCache
from modelreg_server.errors import PermissionDeniedError, UnauthenticatedError

CACHE_SECONDS = 0.5
BOOTSTRAP_ADMIN = "bootstrap-admin"
MAX_CREDENTIAL_LENGTH = 16_384
MAX_END_USER_LENGTH = 16_384
MAX_END_USER_GROUPS = 1_000


class Identities(Protocol):
    """What authentication reads from the access database."""

    def token_owner(self, token_id: str) -> TokenOwner | None: ...
    def get_user(self, name: str) -> User | None: ...


class Authenticator:
    def __init__(
        self,
        identities: Identities,
        *,
        oidc: OidcVerifier | None = None,
        bootstrap_token: str | None = None,
        admin_group: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._identities = identities
        self._oidc = oidc
        self._bootstrap = bootstrap_token.encode() if bootstrap_token else None
        self._admin_group = admin_group
        self._clock = clock
        # credential -> (principal, epoch seconds after which the credential itself is expired)
        self._cache: TtlCache[str, tuple[Principal, float]] = TtlCache(CACHE_SECONDS)

    def authenticate(
        self, authorization: str | None, on_behalf_of: str | None = None, *, reads_only: bool = True
    ) -> Principal:
        """The caller; ``reads_only`` says whether the call is one a service may make on behalf
        of an end user (reads, and sealing a run's artifacts for a registration)."""
        principal = self._caller(authorization)
        if on_behalf_of is None:
            return principal
        if not principal.service:
            raise PermissionDeniedError(
                "ON_BEHALF_NOT_ALLOWED",
                "only a service principal may act on behalf of another user",
                {"permission": "SERVICE", "resource": "x-modelreg-on-behalf-of"},
            )
        if not reads_only:
            raise PermissionDeniedError(
                "ON_BEHALF_NOT_ALLOWED",
                "a service acts on behalf of a user only to read",
                {"permission": "SERVICE", "resource": "x-modelreg-on-behalf-of"},
            )
        return _end_user(on_behalf_of, principal.name)

    def _caller(self, authorization: str | None) -> Principal:
        if not authorization:
            raise UnauthenticatedError(
                "MISSING_CREDENTIALS", "this call needs 'authorization: Bearer <token>'"
            )
        scheme, _, credential = authorization.partition(" ")
        credential = credential.strip()
        if scheme.lower() != "bearer" or not credential or len(credential) > MAX_CREDENTIAL_LENGTH:
            raise UnauthenticatedError(
                "MALFORMED_CREDENTIALS", "the authorization header must be 'Bearer <token>'"
            )
        cached = self._cache.get(credential)
        if cached is not None and cached[1] > self._clock():
            return cached[0]
        if self._bootstrap is not None and hmac.compare_digest(credential.encode(), self._bootstrap):
            return Principal(BOOTSTRAP_ADMIN, admin=True, authenticated_by="bootstrap")
        if credential.startswith(tokens.PREFIX):
            principal, expires = self._api_token(credential)
        elif self._oidc is not None and credential.count(".") == 2:
            principal, expires = self._oidc_token(credential)
        else:
            raise UnauthenticatedError(
                "INVALID_TOKEN", "the bearer token is not a modelreg token or a valid JWT"
            )
        self._cache.put(credential, (principal, expires))
        return principal

    def _api_token(self, credential: str) -> tuple[Principal, float]:
        parts = tokens.split(credential)
        owner = self._identities.token_owner(parts[0]) if parts else None
        if parts is None or owner is None or not tokens.matches(parts[1], owner.secret_hash):
            raise UnauthenticatedError("INVALID_TOKEN", "the token is not valid")
        now_ms = self._clock() * 1000
        if owner.revoked_at is not None:
            raise UnauthenticatedError("TOKEN_REVOKED", f"token '{parts[0]}' was revoked")
        if owner.expires_at is not None and owner.expires_at <= now_ms:
            raise UnauthenticatedError("TOKEN_EXPIRED", f"token '{parts[0]}' has expired")
        user = owner.user
        if user.disabled:
            raise UnauthenticatedError("USER_DISABLED", f"user '{user.name}' is disabled")
        groups = frozenset(user.groups)
        principal = Principal(
            user.name,
            groups,
            admin=user.admin or self._in_admin_group(groups),
            service=user.service,
            authenticated_by="token",
            token_expires_at=owner.expires_at,
        )
        return principal, (owner.expires_at / 1000 if owner.expires_at is not None else float("inf"))

    def _oidc_token(self, credential: str) -> tuple[Principal, float]:
        assert self._oidc is not None
        identity = self._oidc.verify(credential)
        user = self._identities.get_user(identity.name)
        if user is not None and user.disabled:
            raise UnauthenticatedError("USER_DISABLED", f"user '{user.name}' is disabled")
        groups = identity.groups | frozenset(user.groups if user else ())
        # Never a service: an identity provider may let a user choose the name of a service user.
        principal = Principal(
            identity.name,
            groups,
            admin=bool(user and user.admin) or self._in_admin_group(groups),
            authenticated_by="oidc",
        )
        return principal, identity.expires_at

    def _in_admin_group(self, groups: frozenset[str]) -> bool:
        return self._admin_group is not None and self._admin_group in groups


def _end_user(encoded: str, service: str) -> Principal:
    """The end user a service names (wire.encode_end_user), running ``via`` that service."""
    try:
        if len(encoded) > MAX_END_USER_LENGTH:
            raise ValueError("too long")
        data = json.loads(encoded)
        name, groups, admin = data["name"], data["groups"], data["admin"]
        if not (isinstance(name, str) and 0 < len(name) <= 250 and isinstance(admin, bool)):
            raise ValueError("bad name or admin flag")
        if not (
            isinstance(groups, list)
            and len(groups) <= MAX_END_USER_GROUPS
            and all(isinstance(g, str) and 0 < len(g) <= 128 for g in groups)
        ):
            raise ValueError("bad groups")
    except (ValueError, KeyError, TypeError, RecursionError):
        raise UnauthenticatedError(
            "MALFORMED_CREDENTIALS", "x-modelreg-on-behalf-of must be the JSON the modelreg client sends"
        ) from None
    return Principal(name, frozenset(groups), admin=admin, authenticated_by="service", via=service)
