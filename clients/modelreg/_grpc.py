"""Channels, deadlines, retries, call metadata and error translation for the modelreg clients.

- One channel per client object; gRPC channels are thread-safe, so one client may be shared by
  threads.
- Every call carries a deadline: ``timeout`` for unary calls, ``transfer_timeout`` for streams
  (artifacts and metric streams can legitimately run for minutes).
- Retries are one loop (:meth:`Rpc.unary`, :meth:`Rpc.stream_unary`) driven by
  :data:`RETRY_POLICY`: every unary call, reads and writes, is retried on UNAVAILABLE (a service
  restarting, a connection lost) with exponential backoff and jitter for up to ``retry_seconds``
  in all (``MODELREG_RETRY_SECONDS``, default 60; 0 disables retries). Each attempt has its own
  deadline (``timeout``). gRPC's own retries (service config) are off: they stop at 5 attempts.
- Every write carries ``x-modelreg-idempotency-key``, one random key per logical call and the same
  on each of its retries, and the services apply a key once: a write whose answer was lost (the
  write committed, the connection broke) is answered again on retry, not applied twice. Reads
  (the :data:`IDEMPOTENT_PREFIXES`) carry none. The access service keeps no keys, so the
  AccessClient retries its reads only (``RetryPolicy.writes``).
- Client streams: an artifact upload is sent again whole from its file (the same bytes at the same
  path is the same outcome) on UNAVAILABLE, and on RESOURCE_EXHAUSTED reason TOO_MANY_STREAMS (the
  server's stream slots are all taken). A LogMetrics stream carries one idempotency key and the
  server stores its n-th message once per key (``<key>/<n>``); a retry sends the messages again from
  the first (the client keeps what it sent for that), so the messages stored before the break are
  skipped and none is stored twice.
  Server streams (downloads) are not retried: a failed download raises, and the caller downloads
  again (a partial file never lands under its name).
- Ctrl-C (KeyboardInterrupt) ends the wait between attempts at once and retries nothing more; an
  attempt under way ends within its deadline.
- ``grpcs://`` targets use TLS with the files of a :class:`~modelreg.config.TlsConfig` (the CA to
  trust, the client certificate for mTLS); a failed handshake says which side is likely wrong.
- Metadata on every call: ``x-request-id`` (the request id of the server call we are serving, when
  a service calls another one, else a fresh one), ``x-modelreg-actor``, ``authorization: Bearer
  <token>`` when the client has a token, and ``x-modelreg-on-behalf-of`` when a service forwards
  its end user (:func:`modelreg.wire.forwarding_end_user`).

Per-call overhead matters (a loopback round trip is ~0.5 ms): the actor header is built once per
client, and a request id and an idempotency key are 16 random bytes in hex each.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

import grpc

from modelreg import wire
from modelreg.config import DEFAULT_RETRY_SECONDS, TLS_VARIABLES, ClientSettings, TlsConfig
from modelreg.exceptions import ModelregError, from_rpc_error

Req = TypeVar("Req")
Resp = TypeVar("Resp")
T = TypeVar("T")

MAX_MESSAGE_BYTES = 8 * 1024 * 1024
# Methods with these prefixes change nothing (Seal: idempotent): they carry no idempotency key.
IDEMPOTENT_PREFIXES = ("Get", "Search", "List", "Stat", "Download", "Resolve", "Seal", "WhoAmI")
log = logging.getLogger("modelreg.client")


@dataclass(frozen=True)
class RetryPolicy:
    """When and how long a failed call is tried again.

    A call failing with one of ``codes`` (a client stream also with RESOURCE_EXHAUSTED and one of
    ``stream_reasons``) is tried again after a pause drawn from [ceiling/2, ceiling], the ceiling
    starting at ``initial_backoff`` and multiplied by ``multiplier`` up to ``max_backoff``, until
    ``total_seconds`` have passed since the first attempt (0: never tried again). ``writes``:
    whether writes are retried too (they are where the service applies idempotency keys).
    """

    total_seconds: float = DEFAULT_RETRY_SECONDS
    initial_backoff: float = 0.1
    max_backoff: float = 5.0
    multiplier: float = 2.0
    codes: frozenset[str] = frozenset({"UNAVAILABLE"})
    stream_reasons: frozenset[str] = frozenset({"TOO_MANY_STREAMS"})
    writes: bool = True

    def retries(self, error: ModelregError, *, stream: bool) -> bool:
        """Whether a call that failed with ``error`` may be tried again. A connection refused for
        its TLS settings (UNAVAILABLE too) is raised at once: only a setting fixes it."""
        if error.code in self.codes:
            return not error.misconfigured
        return stream and error.code == "RESOURCE_EXHAUSTED" and error.reason in self.stream_reasons

    def pauses(self) -> Iterator[float]:
        """The pauses before the 2nd, 3rd, ... attempt (jittered so clients do not retry in step)."""
        ceiling = self.initial_backoff
        while True:
            yield random.uniform(ceiling / 2, ceiling)
            ceiling = min(ceiling * self.multiplier, self.max_backoff)


RETRY_POLICY = RetryPolicy()


def is_write(method_name: str) -> bool:
    """Whether a method may change something, i.e. its calls carry an idempotency key."""
    return not method_name.startswith(IDEMPOTENT_PREFIXES)


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


def open_channel(uri: str, tls: TlsConfig | None = None) -> grpc.Channel:
    target, secure = parse_target(uri)
    options: list[tuple[str, Any]] = [
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ("grpc.enable_retries", 0),  # Rpc's loop retries (see the module docstring)
        # Reconnect soon after a restart: the channel's own backoff between connection attempts
        # would otherwise grow to 2 minutes, and a retry meanwhile fails without trying.
        ("grpc.initial_reconnect_backoff_ms", 100),
        ("grpc.min_reconnect_backoff_ms", 100),
        ("grpc.max_reconnect_backoff_ms", 2_000),
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


def caller_headers(actor: str, token: str | None) -> tuple[tuple[str, str], ...]:
    """The headers naming who calls: the actor, and the bearer token when there is one."""
    if token:
        return ((wire.ACTOR_HEADER, actor), (wire.AUTHORIZATION_HEADER, f"Bearer {token}"))
    return ((wire.ACTOR_HEADER, actor),)


class Rpc:
    """Invokes stub methods with the deadline, metadata and error translation every call needs."""

    def __init__(
        self,
        uri: str,
        *,
        actor: str,
        timeout: float,
        transfer_timeout: float,
        token: str | None = None,
        tls: TlsConfig | None = None,
        retry: RetryPolicy = RETRY_POLICY,
    ):
        self.uri = uri
        self.secure = parse_target(uri)[1]
        self.actor = actor
        self.timeout = timeout
        self.transfer_timeout = transfer_timeout
        self.retry = retry
        # Attempts that failed and were tried again, over this client's life.
        self.retried = 0
        self.channel = open_channel(uri, tls)
        self._fixed_headers = caller_headers(actor, token)

    def metadata(self, *, write: bool = False) -> tuple[tuple[str, str], ...]:
        """The headers of one logical call (every attempt of it sends the same): with ``write``,
        a fresh idempotency key."""
        caller = wire.caller()
        headers = (
            (wire.REQUEST_ID_HEADER, wire.forwarded_request_id() or wire.new_request_id()),
            *(self._fixed_headers if caller is None else caller_headers(*caller)),
        )
        if write:
            headers += ((wire.IDEMPOTENCY_HEADER, wire.new_request_id()),)
        end_user = wire.forwarded_end_user()
        return headers if end_user is None else (*headers, (wire.ON_BEHALF_HEADER, end_user))

    @classmethod
    def for_client(
        cls,
        target: str,
        settings: ClientSettings,
        *,
        timeout: float | None,
        token: str | None,
        tls: TlsConfig | None,
    ) -> Rpc:
        """The Rpc of a service client: explicit arguments, else the environment's settings."""
        return cls(
            target,
            actor=settings.actor,
            timeout=timeout if timeout is not None else settings.timeout,
            transfer_timeout=settings.transfer_timeout,
            token=token if token is not None else settings.token,
            tls=tls if tls is not None else settings.tls,
            retry=RetryPolicy(total_seconds=settings.retry_seconds),
        )

    def _retrying(self, attempt: Callable[[], T], *, stream: bool = False, write: bool = False) -> T:
        """``attempt()`` until it succeeds, fails for good, or RETRY_POLICY's time is up; the
        last error as a ModelregError. Ctrl-C during a pause raises at once."""
        policy = self.retry
        give_up = time.monotonic() + policy.total_seconds
        pauses = policy.pauses()
        while True:
            try:
                return attempt()
            except grpc.RpcError as err:
                error = from_rpc_error(err, tls=self.secure)
            pause = next(pauses)
            if (
                (write and not policy.writes)
                or not policy.retries(error, stream=stream)
                or time.monotonic() + pause > give_up
            ):
                raise error
            self.retried += 1
            log.debug("%s (%s); trying again in %.2f s", error.code, error, pause)
            time.sleep(pause)

    def unary(self, method: grpc.UnaryUnaryMultiCallable[Req, Resp], request: Req) -> Resp:
        """One call, retried per RETRY_POLICY; a write carries one idempotency key throughout."""
        name: str = getattr(request, "DESCRIPTOR").name  # noqa: B009 (every request is a message)
        write = is_write(name.removesuffix("Request"))
        metadata = self.metadata(write=write)
        return self._retrying(
            lambda: method(request, timeout=self.timeout, metadata=metadata, wait_for_ready=False),
            write=write,
        )

    def stream_unary(
        self,
        method: grpc.StreamUnaryMultiCallable[Req, Resp],
        requests: Callable[[], Iterator[Req]],
        *,
        write: bool = False,
        once: bool = False,
    ) -> Resp:
        """A client stream: ``requests()`` gives the messages of each attempt, retried per
        RETRY_POLICY (UNAVAILABLE, or RESOURCE_EXHAUSTED with TOO_MANY_STREAMS); with ``write``
        every attempt carries the same idempotency key. With ``once``, one attempt only: for
        messages that cannot be produced again."""
        metadata = self.metadata(write=write)

        def attempt() -> Resp:
            call = method.future(
                requests(), timeout=self.transfer_timeout, metadata=metadata, wait_for_ready=False
            )
            try:
                return call.result()
            except BaseException:
                # Ctrl-C (KeyboardInterrupt) or an exit while waiting: cancel the stream, so the
                # server sees it end now (CANCELLED) and this process does not wait on it at exit.
                call.cancel()  # type: ignore[no-untyped-call]
                raise

        if once:
            try:
                return attempt()
            except grpc.RpcError as err:
                raise from_rpc_error(err, tls=self.secure) from None
        return self._retrying(attempt, stream=True, write=write)

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
