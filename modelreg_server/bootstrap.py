"""Server construction and lifecycle shared by both services."""

from __future__ import annotations

import gc
import logging
import signal
import socket
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from modelreg_server.access.authenticator import Authenticator
from modelreg_server.interceptor import CallObserver, ServiceInterceptor
from modelreg_server.observability import JsonFormatter
from modelreg_server.settings import TlsSettings
from modelreg_server.streams import StreamLimits, Streams

# Artifacts travel in chunks of at most 1 MiB; leave room for the envelope.
MAX_MESSAGE_BYTES = 8 * 1024 * 1024


def configure_logging(level: str, *, json_format: bool = False) -> None:
    """Logs to stderr: ``time level logger message`` lines, or one JSON object per line."""
    handler = logging.StreamHandler()
    handler.setFormatter(
        JsonFormatter()
        if json_format
        else logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s")
    )
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)


def new_server(
    *,
    service: str,
    error_domain: str,
    max_workers: int,
    observer: CallObserver | None = None,
    authenticator: Authenticator | None = None,
    stream_limits: StreamLimits | None = None,
    long_streams: Sequence[str] = (),
    long_stream_workers: int = 0,
) -> grpc.Server:
    """A server of ``max_workers`` threads; streams (both directions) are limited by
    ``stream_limits`` (the defaults when None), so that some of the threads are always left for
    unary calls.

    ``long_streams`` (full method names) are server streams that mostly wait, bounded by their
    own limit of ``long_stream_workers`` at once (the registry's watches): they take no stream
    slot, and the pool has a thread for each on top of ``max_workers`` (threads are started only
    when needed)."""
    streams = Streams(stream_limits or StreamLimits(), max_workers)
    return grpc.server(
        ThreadPoolExecutor(max_workers=max_workers + long_stream_workers, thread_name_prefix=service),
        interceptors=[
            ServiceInterceptor(
                service,
                error_domain,
                observer=observer,
                authenticator=authenticator,
                streams=streams,
                unslotted=frozenset(long_streams),
            )
        ],
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            # Two server processes may share a port only when asked; never by accident.
            ("grpc.so_reuseport", 0),
        ],
    )


def add_health_and_reflection(
    server: grpc.Server, full_service_names: Sequence[str], *, enable_reflection: bool = True
) -> health.HealthServicer:
    """Registers grpc.health.v1 (each service SERVING, and the overall "") and, unless turned off,
    reflection (which, like every RPC but health, needs credentials when access control is on)."""
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    for name in (*full_service_names, ""):
        health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    if enable_reflection:
        reflection.enable_server_reflection(
            (*full_service_names, health.SERVICE_NAME, reflection.SERVICE_NAME), server
        )
    return health_servicer


def port_unavailable(host: str, port: int) -> str | None:
    """Why ``host:port`` cannot be listened on now, or None when it can. Probed as the services
    bind (SO_REUSEADDR, no SO_REUSEPORT): any listener counts, a previous run's TIME_WAIT does not."""
    try:
        addresses = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        for family, kind, proto, _, address in addresses:
            with socket.socket(family, kind, proto) as probe:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                probe.bind(address)
    except OSError as exc:
        return exc.strerror or str(exc)
    return None


def bind(server: grpc.Server, host: str, port: int, tls: TlsSettings | None = None) -> int:
    """Binds a port and returns the actual port (port 0 picks a free one): TLS with ``tls``
    (requiring client certificates when it names a client CA), else plaintext.

    A port that cannot be had raises OSError. It is probed with a plain socket first because
    gRPC's own failure also writes a C-core error line to stderr, which would bury the one line
    the service prints when it cannot start.
    """
    if port and (why := port_unavailable(host, port)) is not None:
        raise OSError(f"cannot listen on {host}:{port}: {why}")
    try:
        if tls is None:
            bound = server.add_insecure_port(f"{host}:{port}")
        else:
            credentials = grpc.ssl_server_credentials(
                [(tls.private_key, tls.certificate_chain)],
                root_certificates=tls.client_ca,
                require_client_auth=tls.client_ca is not None,
            )
            bound = server.add_secure_port(f"{host}:{port}", credentials)
    except RuntimeError as exc:  # grpcio reports a failed bind as RuntimeError
        raise OSError(f"cannot listen on {host}:{port}: {exc}") from None
    if bound == 0:
        raise OSError(f"cannot listen on {host}:{port}")
    return bound


def tls_note(tls: TlsSettings | None) -> str:
    """How the port is secured, for the service's "listening on" line."""
    if tls is None:
        return ""
    return " (TLS, client certificates required)" if tls.client_ca is not None else " (TLS)"


def serve_until_signal(
    server: grpc.Server, health_servicer: health.HealthServicer, grace_seconds: float
) -> None:
    """Serves until SIGTERM or SIGINT, then reports NOT_SERVING and lets in-flight calls finish."""
    stop_requested = threading.Event()

    def request_stop(signum: int, _frame: object) -> None:
        logging.getLogger("modelreg").info("signal %s: stopping, grace %.0fs", signum, grace_seconds)
        stop_requested.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    # What start-up loaded (modules, SQLAlchemy tables, message classes: ~90,000 objects) lives as
    # long as the process. Frozen, the cyclic GC stops walking it on every full collection: unfrozen,
    # each one took 30-40 ms and landed on whichever call allocated past the threshold (a search's
    # p99 was 4x its p50); frozen, about 1 ms. A young generation of 10,000 instead of 700: a
    # search holds a few thousand short-lived objects at once, which otherwise set off several
    # collections per call that find nothing to free (refcounting frees them).
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000)
    server.start()
    stop_requested.wait()
    health_servicer.enter_graceful_shutdown()
    server.stop(grace_seconds).wait()
