"""Client settings from the environment: the only client module that reads ``os.environ``.

- ``MODELREG_TRACKING_URI``: tracking service target (default ``localhost:50051``).
- ``MODELREG_REGISTRY_URI``: registry service target (default ``localhost:50052``).
- ``MODELREG_TOKEN``: the bearer token sent with every call (an API token from
  ``modelreg tokens create``, or an OIDC access token), needed when the services run with access
  control on; the services then record the token's user as the actor.
- ``MODELREG_USER``: the actor a service *without* access control records in the audit history
  (default: the OS user); ignored by a service with access control on.
- ``MODELREG_TIMEOUT``: per-call deadline in seconds for unary calls (default 30).
- ``MODELREG_TRANSFER_TIMEOUT``: deadline in seconds for one artifact or metric stream (default 3600).
- ``MODELREG_RETRY_SECONDS``: how long a call that failed UNAVAILABLE (a restarting or unreachable
  service) is retried, with exponential backoff and jitter, before the error is raised (default 60;
  0 disables retries). Writes carry an idempotency key, so a retried write is applied once.
- ``MODELREG_CACHE_DIR``: where loaded models are cached, keyed by digest (default
  ``$XDG_CACHE_HOME/modelreg``, else ``~/.cache/modelreg``).

A target is ``host:port`` (also accepted as ``grpc://host:port``) or ``grpcs://host:port`` for TLS,
which reads (see :class:`TlsConfig`):

- ``MODELREG_CA_FILE``: PEM bundle of the CAs to trust (default: the system roots).
- ``MODELREG_CLIENT_CERT_FILE`` / ``MODELREG_CLIENT_KEY_FILE``: the client's certificate and key,
  both or neither, for a server that requires client certificates (mTLS).

``modelreg.set_tracking_uri`` / ``set_registry_uri`` override the environment for the whole
process, so every client created afterwards without an explicit target (``modelreg.Client()``,
the flavors) talks to the same services, as with MLflow.
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

DEFAULT_TRACKING_URI = "localhost:50051"
DEFAULT_REGISTRY_URI = "localhost:50052"
DEFAULT_TIMEOUT = 30.0
DEFAULT_TRANSFER_TIMEOUT = 3600.0
DEFAULT_RETRY_SECONDS = 60.0


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # containers often run as a uid without a passwd entry
        return "anonymous"


_overrides: dict[str, str] = {}


def set_default_uri(service: str, uri: str | None) -> None:
    """Process-wide default target of ``service`` ("tracking" or "registry"); None clears it."""
    if service not in ("tracking", "registry"):
        raise ValueError(f"unknown service {service!r}")
    if uri is None:
        _overrides.pop(service, None)
    else:
        _overrides[service] = uri


_ENV_NAMES = {"tracking": "MODELREG_TRACKING_URI", "registry": "MODELREG_REGISTRY_URI"}
_DEFAULTS = {"tracking": DEFAULT_TRACKING_URI, "registry": DEFAULT_REGISTRY_URI}


def default_uri(service: str) -> str:
    """The target of ``service`` now: set_*_uri, else the environment, else the default."""
    return _overrides.get(service) or os.environ.get(_ENV_NAMES[service]) or _DEFAULTS[service]


# TlsConfig field -> the variable that sets it, which errors name.
TLS_VARIABLES = {
    "ca_file": "MODELREG_CA_FILE",
    "client_cert_file": "MODELREG_CLIENT_CERT_FILE",
    "client_key_file": "MODELREG_CLIENT_KEY_FILE",
}


@dataclass(frozen=True)
class TlsConfig:
    """The files a ``grpcs://`` channel uses; ``TrackingClient(tls=...)`` / ``RegistryClient(tls=...)``
    take one in place of the environment's.

    ``ca_file``: PEM bundle of the CAs to trust (None: the system roots). ``client_cert_file`` and
    ``client_key_file``: the client's certificate chain and private key (PEM), both or neither, for
    a server that requires client certificates (mTLS). Files are read when a channel opens.
    """

    ca_file: str | None = None
    client_cert_file: str | None = None
    client_key_file: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> TlsConfig:
        return cls(**{field: env.get(name) or None for field, name in TLS_VARIABLES.items()})


@dataclass(frozen=True)
class ClientSettings:
    tracking_uri: str
    registry_uri: str
    actor: str
    token: str | None
    timeout: float
    transfer_timeout: float
    cache_dir: Path
    tls: TlsConfig
    retry_seconds: float = DEFAULT_RETRY_SECONDS

    @classmethod
    def from_env(cls) -> ClientSettings:
        env = os.environ
        return cls(
            tracking_uri=default_uri("tracking"),
            registry_uri=default_uri("registry"),
            actor=env.get("MODELREG_USER") or _os_user(),
            token=env.get("MODELREG_TOKEN", "").strip() or None,
            timeout=float(env.get("MODELREG_TIMEOUT") or DEFAULT_TIMEOUT),
            transfer_timeout=float(env.get("MODELREG_TRANSFER_TIMEOUT") or DEFAULT_TRANSFER_TIMEOUT),
            cache_dir=Path(
                env.get("MODELREG_CACHE_DIR")
                or Path(env.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "modelreg"
            ),
            tls=TlsConfig.from_env(),
            retry_seconds=_seconds(env, "MODELREG_RETRY_SECONDS", DEFAULT_RETRY_SECONDS),
        )


def _seconds(env: Mapping[str, str], name: str, default: float) -> float:
    """A non-negative number of seconds from ``name``; ValueError naming the variable otherwise."""
    raw = env.get(name) or ""
    if not raw.strip():
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{name} must be a number of seconds, not {raw!r}") from None
    if not value >= 0 or value == float("inf"):
        raise ValueError(f"{name} must be a finite number of seconds >= 0, not {raw!r}")
    return value
