"""The endpoint's settings, from the environment (the ``modelreg mlflow-server`` command's flags set them too).

- ``MODELREG_MLFLOW_HOST`` / ``MODELREG_MLFLOW_PORT``: where it listens (127.0.0.1:5000).
- ``MODELREG_TRACKING_URI`` / ``MODELREG_REGISTRY_URI``: the services it calls, with the client's
  usual TLS variables (``MODELREG_CA_FILE``, ``MODELREG_CLIENT_CERT_FILE``...).
- ``MODELREG_MLFLOW_MAX_BODY_BYTES``: the largest JSON request body (8 MiB; MLflow's largest
  batch, 1,000 metrics + 100 params + 100 tags, is well under 2 MiB).
- ``MODELREG_MLFLOW_MAX_ARTIFACT_BYTES``: the largest file uploaded through the artifact proxy
  (5 GiB), relayed to the tracking service as it arrives (nothing is written to the endpoint's disk).
- ``MODELREG_MLFLOW_RETRY_SECONDS``: how long one request rides out a service that is
  UNAVAILABLE before answering 503 (10 s; MLflow's client then retries with backoff itself).
- ``MODELREG_MLFLOW_TLS_CERT_FILE`` / ``MODELREG_MLFLOW_TLS_KEY_FILE``: serve HTTPS with these
  (MLflow's client trusts it through ``MLFLOW_TRACKING_SERVER_CERT_PATH`` or the system store).
- ``MODELREG_MLFLOW_MAX_CONCURRENT_UPLOADS``: how many artifact uploads are relayed at once (8);
  one more answers 503 TEMPORARILY_UNAVAILABLE, which MLflow's client retries with backoff. Each
  holds one of the tracking service's stream slots (``MODELREG_MAX_STREAMS``) while its body
  arrives, and a few MiB of memory here.
- ``MODELREG_MLFLOW_BODY_TIMEOUT_SECONDS``: how long a request body may send nothing before the
  request is answered 408 DEADLINE_EXCEEDED (60 s; MLflow's client retries a 408).

The command line (``modelreg mlflow-server``, ``python -m mlflow_gateway``) overrides the first four
with ``--host``, ``--port``, ``--tracking-uri`` and ``--registry-uri`` (:func:`add_arguments`).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass

from modelreg.config import DEFAULT_REGISTRY_URI, DEFAULT_TRACKING_URI
from modelreg_server.settings import EnvReader


@dataclass(frozen=True)
class GatewaySettings:
    host: str = "127.0.0.1"
    port: int = 5000
    tracking_uri: str = DEFAULT_TRACKING_URI
    registry_uri: str = DEFAULT_REGISTRY_URI
    max_body_bytes: int = 8 * 1024 * 1024
    max_artifact_bytes: int = 5 * 1024**3
    retry_seconds: float = 10.0
    tls_cert_file: str | None = None
    tls_key_file: str | None = None
    max_concurrent_uploads: int = 8
    body_timeout_seconds: float = 60.0

    def __post_init__(self) -> None:
        # Half a pair would serve plain HTTP to a caller expecting HTTPS: refused, naming the other.
        if bool(self.tls_cert_file) != bool(self.tls_key_file):
            missing = (
                "MODELREG_MLFLOW_TLS_KEY_FILE" if self.tls_cert_file else "MODELREG_MLFLOW_TLS_CERT_FILE"
            )
            raise ValueError(f"{missing} is not set: HTTPS needs both the certificate and its key")

    def with_args(self, args: argparse.Namespace) -> GatewaySettings:
        """These settings with what :func:`add_arguments`' flags gave (an absent flag keeps the setting)."""
        given = {
            name: getattr(args, name)
            for name in ("host", "port", "tracking_uri", "registry_uri")
            if getattr(args, name, None) is not None
        }
        return dataclasses.replace(self, **given)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> GatewaySettings:
        read = EnvReader(os.environ if env is None else env)
        default = cls()
        return cls(
            host=read.text("MODELREG_MLFLOW_HOST", default.host),
            port=read.integer("MODELREG_MLFLOW_PORT", default.port, 1, 65535),
            tracking_uri=read.text("MODELREG_TRACKING_URI", default.tracking_uri),
            registry_uri=read.text("MODELREG_REGISTRY_URI", default.registry_uri),
            max_body_bytes=read.integer("MODELREG_MLFLOW_MAX_BODY_BYTES", default.max_body_bytes, 1, 2**31),
            max_artifact_bytes=read.integer(
                "MODELREG_MLFLOW_MAX_ARTIFACT_BYTES", default.max_artifact_bytes, 1, 2**63 - 1
            ),
            retry_seconds=read.number("MODELREG_MLFLOW_RETRY_SECONDS", default.retry_seconds, 0, 3600),
            tls_cert_file=read.text("MODELREG_MLFLOW_TLS_CERT_FILE", "") or None,
            tls_key_file=read.text("MODELREG_MLFLOW_TLS_KEY_FILE", "") or None,
            max_concurrent_uploads=read.integer(
                "MODELREG_MLFLOW_MAX_CONCURRENT_UPLOADS", default.max_concurrent_uploads, 1, 10_000
            ),
            body_timeout_seconds=read.number(
                "MODELREG_MLFLOW_BODY_TIMEOUT_SECONDS", default.body_timeout_seconds, 0.001, 86_400
            ),
        )


def port_number(text: str) -> int:
    """An argparse type: a TCP port, 1-65535 (0, any free port, would leave MLflow's clients guessing)."""
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (1-65535)")
    return int(text)


def add_arguments(parser: argparse.ArgumentParser, *, service_uris: bool = True) -> None:
    """The endpoint's flags. ``service_uris=False`` where the parser already has ``--tracking-uri``
    and ``--registry-uri`` (the ``modelreg`` command line's common options)."""
    parser.add_argument(
        "--host",
        default=None,
        help="address to listen on (default: $MODELREG_MLFLOW_HOST, else 127.0.0.1; 0.0.0.0 for every interface)",
    )
    parser.add_argument(
        "--port",
        type=port_number,
        default=None,
        help="port to listen on, what MLFLOW_TRACKING_URI names (default: $MODELREG_MLFLOW_PORT, else 5000)",
    )
    if service_uris:
        parser.add_argument(
            "--tracking-uri",
            default=None,
            help="the tracking service, host:port or grpcs://host:port "
            "(default: $MODELREG_TRACKING_URI, else localhost:50051)",
        )
        parser.add_argument(
            "--registry-uri",
            default=None,
            help="the registry service, host:port or grpcs://host:port "
            "(default: $MODELREG_REGISTRY_URI, else localhost:50052)",
        )
