"""Channels, deadlines, retries, call metadata and error translation for the modelreg clients.

- One channel per client object; gRPC channels are thread-safe, so one client may be shared by
  threads.
- Every call carries a deadline: ``timeout`` for unary calls, ``transfer_timeout`` for streams
  (artifacts and metric streams can legitimately run for minutes).
- Retries live in the gRPC service config, not in Python loops: only idempotent methods (reads:
  Get*, Search*, List*, Stat*, Download*, Resolve*) are retried, on UNAVAILABLE, up to 4 attempts
  with exponential backoff, within the call's deadline. Writes are never retried: a retried
  CreateModelVersion could register two versions.
- ``wait_for_ready=False``: a dead target fails fast with UNAVAILABLE (then retried as above)
  instead of hanging until the deadline.
- ``grpcs://`` targets use TLS with the files of a :class:`~modelreg.config.TlsConfig` (the CA to
  trust, the client certificate for mTLS); a failed handshake says which side is likely wrong.
- Metadata on every call: ``x-request-id`` (the request id of the server call we are serving, when
  a service calls another one, else a fresh one), ``x-modelreg-actor``, ``authorization: Bearer
  <token>`` when the client has a token, and ``x-modelreg-on-behalf-of`` when a service forwards
  its end user (:func:`modelreg.wire.forwarding_end_user`).

Per-call overhead matters (a loopback round trip is ~0.5 ms): the service config is built once per
service, the actor header once per client, and a request id is 16 random bytes in hex.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator, Sequence
from functools import cache
from pathlib import Path
from typing import Any, Generic, TypeVar

import grpc
from google.protobuf.descriptor import ServiceDescriptor

from modelreg import wire
from modelreg.config import TLS_VARIABLES, ClientSettings, TlsConfig
from modelreg.exceptions import from_rpc_error

Req = TypeVar("Req")
Resp = TypeVar("Resp")
T = TypeVar("T")

MAX_MESSAGE_BYTES = 8 * 1024 * 1024
# Methods with these prefixes change nothing (Seal: idempotent), so a retry after UNAVAILABLE is safe.
IDEMPOTENT_PREFIXES = ("Get", "Search", "List", "Stat", "Download", "Resolve", "Seal")
RETRY_POLICY = {
    "maxAttempts": 4,
    "initialBackoff": "0.1s",
    "maxBackoff": "2s",
    "backoffMultiplier": 2,
    "retryableStatusCodes": ["UNAVAILABLE"],
}


def parse_target(uri: str) -> tuple[str, bool]:
    """``host:port`` / ``grpc://host:port`` → (target, False); ``grpcs://host:port`` → (target, True)."""
    uri = uri.strip()
    if uri.startswith("grpcs://"):
        return uri.removeprefix("grpcs://").rstrip("/"), True
    if uri.startswith("grpc://"):
        return uri.removeprefix("grpc://").rstrip("/"), False
    if "://" in uri:
        raise ValueError(f"unsupported URI {uri!r}: modelreg speaks gRPC, use host:port or grpc://host:port")
    return uri, False


@cache
def service_config(service: ServiceDescriptor) -> str:
    """The gRPC service config (JSON) that retries the idempotent methods of ``service``."""
    names = [
        {"service": service.full_name, "method": m.name}
        for m in service.methods
        if m.name.startswith(IDEMPOTENT_PREFIXES)
    ]
    return json.dumps({"methodConfig": [{"name": names, "waitForReady": False, "retryPolicy": RETRY_POLICY}]})


def _tls_file(tls: TlsConfig, field: str) -> bytes | None:
    path: str | None = getattr(tls, field)
    if path is None:
        return None
    try:
        return Path(path).expanduser().read_bytes()
    except OSError as exc:
        raise ValueError(f"{TLS_VARIABLES[field]} ({field}): cannot read {path}: {exc.strerror}") from None


def channel_credentials(tls: TlsConfig) -> grpc.ChannelCredentials:
    """TLS credentials from ``tls``'s files; ValueError naming the variable when one is unusable."""
    for given, missing in (("client_cert_file", "client_key_file"), ("client_key_file", "client_cert_file")):
        if getattr(tls, given) is not None and getattr(tls, missing) is None:
            raise ValueError(
                f"{TLS_VARIABLES[given]} ({given}) is set but {TLS_VARIABLES[missing]} ({missing}) is not: "
                "a client certificate and its key go together"
            )
    return grpc.ssl_channel_credentials(
        root_certificates=_tls_file(tls, "ca_file"),
        private_key=_tls_file(tls, "client_key_file"),
        certificate_chain=_tls_file(tls, "client_cert_file"),
    )


def open_channel(uri: str, service: ServiceDescriptor, tls: TlsConfig | None = None) -> grpc.Channel:
    target, secure = parse_target(uri)
    options: list[tuple[str, Any]] = [
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ("grpc.enable_retries", 1),
        ("grpc.service_config", service_config(service)),
        # Servers reject pings more frequent than every 5 minutes by default (too_many_pings), so
        # keepalive probes at that interval: often enough to notice a dead peer behind a NAT.
        ("grpc.keepalive_time_ms", 300_000),
        ("grpc.keepalive_timeout_ms", 20_000),
    ]
    if secure:
        return grpc.secure_channel(target, channel_credentials(tls or TlsConfig()), options=options)
    named = [name for field, name in TLS_VARIABLES.items() if tls is not None and getattr(tls, field)]
    if named:  # TLS asked for, a plaintext target given: never send credentials in clear silently
        raise ValueError(f"{', '.join(named)} is set but {uri!r} is a plaintext target: use grpcs://{target}")
    return grpc.insecure_channel(target, options=options)


def new_request_id() -> str:
    """32 random hex digits, the shape of ``uuid4().hex`` at a fifth of its cost."""
    return os.urandom(16).hex()


class Rpc:
    """Invokes stub methods with the deadline, metadata and error translation every call needs."""

    def __init__(
        self,
        uri: str,
        service: ServiceDescriptor,
        *,
        actor: str,
        timeout: float,
        transfer_timeout: float,
        token: str | None = None,
        tls: TlsConfig | None = None,
    ):
        self.uri = uri
        self.secure = parse_target(uri)[1]
        self.actor = actor
        self.timeout = timeout
        self.transfer_timeout = transfer_timeout
        self.channel = open_channel(uri, service, tls)
        self._fixed_headers: tuple[tuple[str, str], ...] = ((wire.ACTOR_HEADER, actor),)
        if token:
            self._fixed_headers += ((wire.AUTHORIZATION_HEADER, f"Bearer {token}"),)

    def metadata(self) -> tuple[tuple[str, str], ...]:
        headers = (
            (wire.REQUEST_ID_HEADER, wire.forwarded_request_id() or new_request_id()),
            *self._fixed_headers,
        )
        end_user = wire.forwarded_end_user()
        return headers if end_user is None else (*headers, (wire.ON_BEHALF_HEADER, end_user))

    @classmethod
    def for_client(
        cls,
        target: str,
        service: ServiceDescriptor,
        settings: ClientSettings,
        *,
        timeout: float | None,
        token: str | None,
        tls: TlsConfig | None,
    ) -> Rpc:
        """The Rpc of a service client: explicit arguments, else the environment's settings."""
        return cls(
            target,
            service,
            actor=settings.actor,
            timeout=timeout if timeout is not None else settings.timeout,
            transfer_timeout=settings.transfer_timeout,
            token=token if token is not None else settings.token,
            tls=tls if tls is not None else settings.tls,
        )

    def unary(self, method: grpc.UnaryUnaryMultiCallable[Req, Resp], request: Req) -> Resp:
        try:
            return method(request, timeout=self.timeout, metadata=self.metadata(), wait_for_ready=False)
        except grpc.RpcError as err:
            raise from_rpc_error(err, tls=self.secure) from None

    def stream_unary(self, method: grpc.StreamUnaryMultiCallable[Req, Resp], requests: Iterator[Req]) -> Resp:
        call = method.future(
            requests, timeout=self.transfer_timeout, metadata=self.metadata(), wait_for_ready=False
        )
        try:
            return call.result()
        except grpc.RpcError as err:
            raise from_rpc_error(err, tls=self.secure) from None
        except BaseException:
            # Ctrl-C (KeyboardInterrupt) or an exit while waiting: cancel the stream, so the server
            # sees it end now (CANCELLED) and this process does not wait on it at exit.
            call.cancel()  # type: ignore[no-untyped-call]
            raise

    def unary_stream(self, method: grpc.UnaryStreamMultiCallable[Req, Resp], request: Req) -> Iterator[Resp]:
        responses = method(
            request, timeout=self.transfer_timeout, metadata=self.metadata(), wait_for_ready=False
        )
        try:
            yield from responses
        except grpc.RpcError as err:
            raise from_rpc_error(err, tls=self.secure) from None
        finally:
            # A consumer that stops early must not leave the stream open (grpc-stubs leaves cancel untyped).
            responses.cancel()  # type: ignore[no-untyped-call]

    def close(self) -> None:
        self.channel.close()


class Pager(Iterator[T], Generic[T]):
    """Iterates the results of a listing call, fetching pages as it goes.

    ``fetch(page_token, page_size)`` returns one page and the next page token ("" at the end).
    Starts at ``page_token``; stops after ``max_results`` items when given. Once exhausted,
    ``token`` is the token of the page after the last item returned (None when the list ended), so
    a caller can resume where ``max_results`` cut the listing.
    """

    def __init__(
        self,
        fetch: Callable[[str, int], tuple[Sequence[T], str]],
        *,
        page_token: str | None = None,
        max_results: int | None = None,
        page_size: int = 0,
    ) -> None:
        if max_results is not None and max_results < 0:
            raise ValueError("max_results must not be negative")
        self._fetch = fetch
        self._max_results = max_results
        self._page_size = page_size
        self.token: str | None = page_token or None
        self._items = self._generate(page_token or "")

    def _generate(self, token: str) -> Iterator[T]:
        remaining = self._max_results
        while remaining is None or remaining > 0:
            size = self._page_size if remaining is None else min(remaining, self._page_size or remaining)
            items, token = self._fetch(token, size)
            self.token = token or None
            if remaining is not None:
                remaining -= len(items)
            yield from items
            if not token:
                return

    def __iter__(self) -> Pager[T]:
        return self

    def __next__(self) -> T:
        return next(self._items)
