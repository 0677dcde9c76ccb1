"""Verifying OIDC/JWT access tokens of an external identity provider against its JWKS.

Checked: the signature (asymmetric algorithms only: a key set never holds HMAC secrets, and
``none`` is never accepted), ``iss``, ``aud``, ``exp`` (and ``nbf``/``iat`` when present), with 30 s
of leeway for clock skew. The key set is fetched at the first token and every 10 minutes; a token
naming an unknown key id refreshes it at once, but at most every 30 s, so random key ids from a
fuzzer cannot turn each call into a request to the provider.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import jwt

from modelreg_server.errors import UnauthenticatedError, UnavailableError

log = logging.getLogger("modelreg.auth")

ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")
REFRESH_SECONDS = 600.0
MIN_REFRESH_SECONDS = 30.0
FETCH_TIMEOUT_SECONDS = 5.0
MAX_JWKS_BYTES = 1024 * 1024
LEEWAY_SECONDS = 30
_EXPLAINED = (
    jwt.InvalidAudienceError,
    jwt.InvalidIssuerError,
    jwt.MissingRequiredClaimError,
    jwt.ImmatureSignatureError,
    jwt.InvalidSignatureError,
)


@dataclass(frozen=True)
class OidcSettings:
    issuer: str
    jwks_url: str
    audience: str
    user_claim: str = "sub"
    groups_claim: str = "groups"


@dataclass(frozen=True, slots=True)
class OidcIdentity:
    name: str
    groups: frozenset[str]
    expires_at: float


def _fetch(url: str) -> Mapping[str, Any]:
    with urllib.request.urlopen(url, timeout=FETCH_TIMEOUT_SECONDS) as response:
        data: Mapping[str, Any] = json.loads(response.read(MAX_JWKS_BYTES + 1)[:MAX_JWKS_BYTES])
    return data


class OidcVerifier:
    def __init__(
        self,
        settings: OidcSettings,
        fetch: Callable[[str], Mapping[str, Any]] = _fetch,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._settings = settings
        self._fetch = fetch
        self._clock = clock
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at: float | None = None
        self._lock = threading.Lock()

    def verify(self, token: str) -> OidcIdentity:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise UnauthenticatedError("INVALID_TOKEN", "the bearer token is not a valid JWT") from None
        algorithm = header.get("alg")
        if algorithm not in ALGORITHMS:
            raise UnauthenticatedError(
                "INVALID_TOKEN", f"JWT algorithm {str(algorithm)[:20]!r} is not accepted"
            )
        key = self._key(str(header.get("kid") or ""))
        try:
            claims = jwt.decode(
                token,
                key=key.key,
                algorithms=[algorithm],
                audience=self._settings.audience,
                issuer=self._settings.issuer,
                leeway=LEEWAY_SECONDS,
                options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError:
            raise UnauthenticatedError("TOKEN_EXPIRED", "the access token has expired") from None
        except jwt.PyJWTError as exc:
            # PyJWT's texts of these name what failed; others may carry internals.
            detail = str(exc) if isinstance(exc, _EXPLAINED) else "its signature or claims are not valid"
            raise UnauthenticatedError(
                "INVALID_TOKEN", f"the access token was refused: {detail}"[:300]
            ) from None
        except (TypeError, ValueError):  # e.g. an ES256 header naming an RSA key: PyJWT raises TypeError
            raise UnauthenticatedError(
                "INVALID_TOKEN", f"the access token's algorithm {algorithm} does not fit its key"
            ) from None
        return self._identity(claims)

    def _identity(self, claims: Mapping[str, Any]) -> OidcIdentity:
        name = claims.get(self._settings.user_claim)
        if not isinstance(name, str) or not 0 < len(name) <= 128:
            raise UnauthenticatedError(
                "INVALID_TOKEN", f"the access token has no usable '{self._settings.user_claim}' claim"
            )
        raw_groups = claims.get(self._settings.groups_claim, [])
        if isinstance(raw_groups, str):
            raw_groups = [raw_groups]
        if not isinstance(raw_groups, list) or len(raw_groups) > 1000:
            raise UnauthenticatedError(
                "INVALID_TOKEN",
                f"the '{self._settings.groups_claim}' claim must be a list of at most 1,000 names",
            )
        groups = frozenset(g for g in raw_groups if isinstance(g, str) and 0 < len(g) <= 128)
        return OidcIdentity(name, groups, float(claims["exp"]))

    def _key(self, kid: str) -> jwt.PyJWK:
        now = self._clock()
        stale = self._fetched_at is None or now - self._fetched_at > REFRESH_SECONDS
        missing = self._lookup(kid) is None
        if stale or (missing and now - (self._fetched_at or 0.0) > MIN_REFRESH_SECONDS):
            self._refresh(now)
        key = self._lookup(kid)
        if key is None:
            raise UnauthenticatedError("INVALID_TOKEN", "the access token is signed by an unknown key")
        return key

    def _lookup(self, kid: str) -> jwt.PyJWK | None:
        if kid:
            return self._keys.get(kid)
        # No key id: acceptable only when the provider publishes exactly one key.
        return next(iter(self._keys.values())) if len(self._keys) == 1 else None

    def _refresh(self, now: float) -> None:
        with self._lock:
            if self._fetched_at is not None and now - self._fetched_at <= MIN_REFRESH_SECONDS:
                return  # another thread refreshed meanwhile
            try:
                key_set = jwt.PyJWKSet.from_dict(dict(self._fetch(self._settings.jwks_url)))
            except Exception as exc:  # network, JSON, or an unusable key set: the provider's fault
                log.warning("cannot fetch the JWKS at %s: %s", self._settings.jwks_url, exc)
                if not self._keys:
                    raise UnavailableError(
                        "IDENTITY_PROVIDER_UNAVAILABLE", "the identity provider's key set cannot be fetched"
                    ) from None
                self._fetched_at = now  # keep the keys we have; try again later
                return
            self._keys = {str(key.key_id or index): key for index, key in enumerate(key_set.keys)}
            self._fetched_at = now
