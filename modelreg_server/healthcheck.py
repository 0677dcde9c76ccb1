"""A gRPC health probe: ``python -m modelreg_server.healthcheck HOST:PORT [SERVICE]``.

Exits 0 when the server reports SERVING for SERVICE (default: the whole server), 1 otherwise.
Container healthchecks use it so "healthy" means the gRPC service answers, not just an open port.
A ``grpcs://HOST:PORT`` target is probed over TLS with the client's variables: MODELREG_CA_FILE,
and MODELREG_CLIENT_CERT_FILE / MODELREG_CLIENT_KEY_FILE when the server requires mTLS.
"""

from __future__ import annotations

import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from modelreg._grpc import channel_credentials, parse_target
from modelreg.config import TlsConfig


def is_serving(target: str, service: str = "", timeout: float = 3.0, tls: TlsConfig | None = None) -> bool:
    """``target`` is ``host:port`` or ``grpcs://host:port`` (TLS with ``tls``'s files)."""
    address, secure = parse_target(target)
    channel = (
        grpc.secure_channel(address, channel_credentials(tls or TlsConfig()))
        if secure
        else grpc.insecure_channel(address)
    )
    with channel:
        try:
            response = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=service), timeout=timeout
            )
        except grpc.RpcError:
            return False
    return bool(response.status == health_pb2.HealthCheckResponse.SERVING)


def main(argv: list[str]) -> int:
    if not 1 <= len(argv) <= 2:
        print("usage: python -m modelreg_server.healthcheck [grpcs://]HOST:PORT [SERVICE]", file=sys.stderr)
        return 2
    serving = is_serving(argv[0], argv[1] if len(argv) == 2 else "", tls=TlsConfig.from_env())
    print("SERVING" if serving else "NOT_SERVING")
    return 0 if serving else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
