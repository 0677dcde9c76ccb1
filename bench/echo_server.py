"""The machine's floor: a gRPC server that echoes raw bytes back, with no (de)serialization.

`python bench/echo_server.py PORT` serves /bench.Echo/Echo on 127.0.0.1:PORT until SIGTERM. A
round trip through it is the least any unary call of a Python gRPC service can cost here.
"""

from __future__ import annotations

import signal
import sys
from concurrent import futures

import grpc

SERVICE = "bench.Echo"
METHOD = f"/{SERVICE}/Echo"


def _echo(request: bytes, context: grpc.ServicerContext) -> bytes:
    return request


def main() -> None:
    port = int(sys.argv[1])
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    handler = grpc.method_handlers_generic_handler(
        SERVICE, {"Echo": grpc.unary_unary_rpc_method_handler(_echo)}
    )
    server.add_generic_rpc_handlers((handler,))
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    signal.signal(signal.SIGTERM, lambda *_: server.stop(grace=1))
    server.wait_for_termination()


if __name__ == "__main__":
    main()
