"""A gRPC health probe: ``python -m modelreg_server.healthcheck HOST:PORT [SERVICE]``.

Exits 0 when the server reports SERVING for SERVICE (default: the whole server), 1 otherwise.
Container healthchecks use it so "healthy" means the gRPC service answers, not just an open port.
"""

from __future__ import annotations

import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc


def is_serving(target: str, service: str = "", timeout: float = 3.0) -> bool:
    with grpc.insecure_channel(target) as channel:
        try:
            response = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=service), timeout=timeout
            )
        except grpc.RpcError:
            return False
    return bool(response.status == health_pb2.HealthCheckResponse.SERVING)


def main(argv: list[str]) -> int:
    if not 1 <= len(argv) <= 2:
        print("usage: python -m modelreg_server.healthcheck HOST:PORT [SERVICE]", file=sys.stderr)
        return 2
    serving = is_serving(argv[0], argv[1] if len(argv) == 2 else "")
    print("SERVING" if serving else "NOT_SERVING")
    return 0 if serving else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
