"""Reading service settings from the environment, shared by both services' ``config.py``.

Every reader validates its variable and raises :class:`ConfigError` with one line that names it,
so a wrong setting stops the service at start instead of failing deep inside a request.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

from modelreg_server.access.oidc import OidcSettings
from modelreg_server.access.policy import AccessPolicy, Level
from modelreg_server.db import database_url_error
from modelreg_server.streams import StreamLimits

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class ConfigError(ValueError):
    """A setting is invalid; the message is one line naming the variable."""


MIN_BOOTSTRAP_TOKEN_LENGTH = 16
DEFAULT_AUTH_DATABASE_URL = "sqlite:///./.modelreg/auth.db"


@dataclass(frozen=True)
class AuthSettings:
    """Access control, the same variables for both services:

    - MODELREG_AUTH: ``on`` authenticates every call (gRPC health aside) and applies permissions;
      ``off`` serves without access control. Unset means off, but only on a loopback address:
      a service listening elsewhere refuses to start until it is set either way.
    - MODELREG_AUTH_DATABASE_URL: the access database (users, groups, tokens), shared by both
      services (default ``sqlite:///./.modelreg/auth.db``).
    - MODELREG_BOOTSTRAP_ADMIN_TOKEN: a secret of at least 16 characters accepted as the admin
      ``bootstrap-admin``, to create the first users; unset it once they exist.
    - MODELREG_OIDC_ISSUER, MODELREG_OIDC_JWKS_URL, MODELREG_OIDC_AUDIENCE (all three or none):
      accept access tokens of this identity provider; MODELREG_OIDC_USER_CLAIM (default ``sub``)
      and MODELREG_OIDC_GROUPS_CLAIM (default ``groups``) name the claims read.
    - MODELREG_ADMIN_GROUP: members of this group are admins (e.g. a group of the provider).
    - MODELREG_DEFAULT_PERMISSION: the level every authenticated user has on everything (NONE,
      READ (default), EDIT, MANAGE).
    - MODELREG_CREATOR_PERMISSION: what the creator of an experiment or model is granted (default
      MANAGE; NONE grants nothing).
    """

    enabled: bool = False
    # Opened only when access control is on.
    database_url: str = DEFAULT_AUTH_DATABASE_URL
    bootstrap_admin_token: str | None = field(default=None, repr=False)
    oidc: OidcSettings | None = None
    admin_group: str | None = None
    policy: AccessPolicy = field(default_factory=AccessPolicy)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class TlsSettings:
    """A service's TLS: its certificate chain and private key (PEM) and, for mTLS, the CA
    certificates whose client certificates it accepts (then every client must present one)."""

    certificate_chain: bytes
    private_key: bytes = field(repr=False)
    client_ca: bytes | None = None


def _same_public_key(key: PrivateKeyTypes, certificate: x509.Certificate) -> bool:
    der = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return key.public_key().public_bytes(*der) == certificate.public_key().public_bytes(*der)


class EnvReader:
    """Typed, validated access to environment variables; blank counts as unset."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self._env = env

    def text(self, name: str, default: str) -> str:
        return self._env.get(name, "").strip() or default

    def integer(self, name: str, default: int, low: int, high: int) -> int:
        raw = self.text(name, "")
        if not raw:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise ConfigError(f"{name} must be an integer, got {raw!r}") from None
        if not low <= value <= high:
            raise ConfigError(f"{name} must be between {low} and {high}, got {value}")
        return value

    def number(self, name: str, default: float, low: float, high: float) -> float:
        raw = self.text(name, "")
        if not raw:
            return default
        try:
            value = float(raw)
        except ValueError:
            raise ConfigError(f"{name} must be a number, got {raw!r}") from None
        if not low <= value <= high:
            raise ConfigError(f"{name} must be between {low:g} and {high:g}, got {value:g}")
        return value

    def boolean(self, name: str, default: bool) -> bool:
        raw = self.text(name, "").lower()
        if not raw:
            return default
        if raw in _TRUE | _FALSE:
            return raw in _TRUE
        raise ConfigError(f"{name} must be true or false, got {raw!r}")

    def choice(self, name: str, default: str, choices: tuple[str, ...]) -> str:
        """One of ``choices``, compared without regard to case."""
        value = self.text(name, default)
        value = next((choice for choice in choices if choice.lower() == value.lower()), value)
        if value not in choices:
            raise ConfigError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
        return value

    def database_url(self, name: str, default: str) -> str:
        """A SQLAlchemy URL whose dialect and driver are installed; never echoes a password."""
        url = self.text(name, default)
        problem = database_url_error(url)
        if problem is None:
            return url
        try:
            shown = sa.make_url(url).render_as_string(hide_password=True)
        except sa.exc.ArgumentError:
            shown = url
        raise ConfigError(f"{name} {problem}: {shown!r}")

    def auth(self, host: str, host_variable: str) -> AuthSettings:
        """Access control settings (see :class:`AuthSettings`) of a service listening on ``host``."""
        if not self.text("MODELREG_AUTH", "") and not is_loopback(host):
            raise ConfigError(
                f"{host_variable}={host} is not a loopback address and MODELREG_AUTH is not set: "
                "set MODELREG_AUTH=on to require credentials, or MODELREG_AUTH=off to serve without access control"
            )
        bootstrap = self.text("MODELREG_BOOTSTRAP_ADMIN_TOKEN", "") or None
        if bootstrap is not None and len(bootstrap) < MIN_BOOTSTRAP_TOKEN_LENGTH:
            raise ConfigError(
                f"MODELREG_BOOTSTRAP_ADMIN_TOKEN must be at least {MIN_BOOTSTRAP_TOKEN_LENGTH} characters"
            )
        oidc_parts = [self.text(name, "") for name in _OIDC_VARIABLES]
        if any(oidc_parts) and not all(oidc_parts):
            raise ConfigError(f"{', '.join(_OIDC_VARIABLES)} must be set together")
        oidc = (
            OidcSettings(
                issuer=oidc_parts[0],
                jwks_url=oidc_parts[1],
                audience=oidc_parts[2],
                user_claim=self.text("MODELREG_OIDC_USER_CLAIM", "sub"),
                groups_claim=self.text("MODELREG_OIDC_GROUPS_CLAIM", "groups"),
            )
            if all(oidc_parts)
            else None
        )
        levels = tuple(level.name for level in Level)
        return AuthSettings(
            enabled=self.boolean("MODELREG_AUTH", False),
            database_url=self.database_url("MODELREG_AUTH_DATABASE_URL", DEFAULT_AUTH_DATABASE_URL),
            bootstrap_admin_token=bootstrap,
            oidc=oidc,
            admin_group=self.text("MODELREG_ADMIN_GROUP", "") or None,
            policy=AccessPolicy(
                default_level=Level[self.choice("MODELREG_DEFAULT_PERMISSION", "READ", levels)],
                creator_level=Level[self.choice("MODELREG_CREATOR_PERMISSION", "MANAGE", levels)],
            ),
        )

    def _file(self, name: str) -> bytes | None:
        path = self.text(name, "")
        if not path:
            return None
        try:
            return Path(path).expanduser().read_bytes()
        except OSError as exc:
            raise ConfigError(f"{name} cannot be read: {path}: {exc.strerror}") from None

    def certificates(self, name: str) -> bytes | None:
        """The PEM certificates (one or a bundle) of the file ``name`` points at; None when unset."""
        data = self._file(name)
        if data is not None:
            try:
                x509.load_pem_x509_certificates(data)
            except ValueError:
                raise ConfigError(f"{name} is not a PEM certificate file: {self.text(name, '')}") from None
        return data

    def key_pair(self, cert_name: str, key_name: str) -> tuple[bytes, bytes] | None:
        """A PEM certificate chain and its private key, both set or neither (None)."""
        chain, key = self.certificates(cert_name), self._file(key_name)
        if chain is None or key is None:
            if chain is not None or key is not None:
                given, missing = (cert_name, key_name) if key is None else (key_name, cert_name)
                raise ConfigError(f"{given} is set but {missing} is not: set both or neither")
            return None
        try:
            private_key = serialization.load_pem_private_key(key, password=None)
        except (ValueError, TypeError):  # TypeError: the key is encrypted
            raise ConfigError(
                f"{key_name} is not an unencrypted PEM private key: {self.text(key_name, '')}"
            ) from None
        if not _same_public_key(private_key, x509.load_pem_x509_certificates(chain)[0]):
            raise ConfigError(f"{key_name} is not the key of the certificate in {cert_name}")
        return chain, key

    def tls(self) -> TlsSettings | None:
        """MODELREG_TLS_CERT_FILE and MODELREG_TLS_KEY_FILE (both or neither; None: plaintext) and
        MODELREG_TLS_CLIENT_CA_FILE (optional: client certificates it signed are then required)."""
        pair = self.key_pair("MODELREG_TLS_CERT_FILE", "MODELREG_TLS_KEY_FILE")
        client_ca = self.certificates("MODELREG_TLS_CLIENT_CA_FILE")
        if pair is None:
            if client_ca is not None:
                raise ConfigError(
                    "MODELREG_TLS_CLIENT_CA_FILE needs MODELREG_TLS_CERT_FILE and MODELREG_TLS_KEY_FILE: "
                    "client certificates are checked only over TLS"
                )
            return None
        return TlsSettings(*pair, client_ca=client_ca)

    def stream_limits(self, workers: int) -> StreamLimits:
        """MODELREG_STREAM_IDLE_SECONDS, MODELREG_STREAM_MAX_SECONDS and MODELREG_MAX_STREAMS
        (fewer than ``workers``, so unary calls keep a thread; see modelreg_server.streams)."""
        defaults = StreamLimits()
        return StreamLimits(
            idle_seconds=self.number("MODELREG_STREAM_IDLE_SECONDS", defaults.idle_seconds, 0.1, 86400),
            max_seconds=self.number("MODELREG_STREAM_MAX_SECONDS", defaults.max_seconds, 1, 7 * 86400),
            max_streams=self.integer("MODELREG_MAX_STREAMS", 0, 1, max(1, workers - 1)) or None,
        )

    def log_level(self, default: str = "INFO") -> str:
        return self.choice("MODELREG_LOG_LEVEL", default, LOG_LEVELS)

    def json_logs(self) -> bool:
        return self.choice("MODELREG_LOG_FORMAT", "text", ("text", "json")) == "json"


_OIDC_VARIABLES = ("MODELREG_OIDC_ISSUER", "MODELREG_OIDC_JWKS_URL", "MODELREG_OIDC_AUDIENCE")
