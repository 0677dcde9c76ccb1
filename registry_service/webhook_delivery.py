"""Sends webhook deliveries: the HTTP sender and the worker thread each registry process runs.

The worker is off the write path entirely: writes only append events; the worker reads them
afterwards (registry_service.store.webhooks explains fan-out, claiming and leases), so a slow or
dead receiver delays nothing but its own deliveries.

The sender connects to the address it checked (no second DNS lookup a re-pointed name could
win), sends the original host in Host and in TLS SNI (the certificate is verified against the
name), follows no redirect, reads no response body, and gives up at the attempt's deadline:
MODELREG_WEBHOOK_TIMEOUT_SECONDS bounds the whole attempt (name lookup, connect, TLS, sending,
the response's head), not each read, so a receiver dripping a byte at a time is cut off there.
Every socket wait of the request is bounded by what is left until that deadline
(_DeadlineBackend), which is why httpcore is used directly: httpx only bounds each operation.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import secrets
import socket
import ssl
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpcore
from standardwebhooks.webhooks import Webhook as Signer

from registry_service.domain.webhooks import (
    InvalidWebhookUrl,
    Message,
    Resolver,
    SendResult,
    WebhookSettings,
    address_refusal,
    event_body,
    loggable_url,
    parse_url,
    retry_delay,
)
from registry_service.store.webhooks import Job, SqlWebhookStore

log = logging.getLogger("modelreg.registry.webhooks")
# Events fanned out per webhook and pass: bounds one transaction, not what is delivered.
FAN_OUT_BATCH = 500
USER_AGENT = "modelreg-webhooks/1"
# Receivers whose keep-alive connections are kept open (the least recently used are closed).
MAX_CLIENTS = 64


# Name lookups run here, so a caller waits at most its timeout; a lookup stuck in the system's
# resolver holds one of these threads until it ends, and beyond 8 stuck, lookups time out queued.
_LOOKUPS = ThreadPoolExecutor(8, thread_name_prefix="modelreg-webhook-dns")


def _getaddrinfo(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def resolver(timeout_seconds: float) -> Resolver:
    """Every address ``host`` resolves to, in the resolver's order: OSError when it does not,
    TimeoutError when that takes longer than ``timeout_seconds``."""

    def resolve(host: str, port: int) -> Sequence[str]:
        lookup = _LOOKUPS.submit(_getaddrinfo, host, port)
        try:
            return lookup.result(timeout_seconds)
        except TimeoutError:
            lookup.cancel()
            raise TimeoutError(f"{host} did not resolve within {timeout_seconds:g} s") from None

    return resolve


# The deadline of the attempt this thread is sending (time.monotonic()), read by every socket wait.
_deadline = threading.local()


def _bound(timeout: float | None) -> float:
    """``timeout`` cut to what is left of the thread's attempt; past its deadline, a timeout."""
    left = getattr(_deadline, "at", float("inf")) - time.monotonic()
    if left <= 0:
        raise httpcore.ReadTimeout("the attempt's deadline passed")
    return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore.NetworkStream):
    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, _bound(timeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, _bound(timeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        return _DeadlineStream(self._inner.start_tls(ssl_context, server_hostname, _bound(timeout)))

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _DeadlineBackend(httpcore.SyncBackend):
    """Streams whose every wait ends by the sending thread's deadline, pooled ones included."""

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        return _DeadlineStream(
            super().connect_tcp(host, port, _bound(timeout), local_address, socket_options)
        )


def signature(message: Message, timestamp: datetime) -> str:
    """The webhook-signature header: a ``v1,<base64>`` entry per secret, space-separated."""
    return " ".join(Signer(secret).sign(message.id, timestamp, message.body) for secret in message.secrets)


class HttpSender:
    def __init__(self, settings: WebhookSettings) -> None:
        self._settings = settings
        self._tls = ssl.create_default_context()
        # Keep-alive clients by (scheme, host, address, port): a pooled connection only ever
        # carries requests for the name its TLS session was verified for, to the address checked.
        self._clients: OrderedDict[tuple[str, str, str, int], httpcore.ConnectionPool] = OrderedDict()
        self._lock = threading.Lock()
        self._backend = _DeadlineBackend()

    def _client(self, key: tuple[str, str, str, int]) -> httpcore.ConnectionPool:
        with self._lock:
            client = self._clients.pop(key, None) or httpcore.ConnectionPool(
                ssl_context=self._tls,
                max_connections=4,
                max_keepalive_connections=2,
                network_backend=self._backend,
            )
            self._clients[key] = client
            while len(self._clients) > MAX_CLIENTS:
                self._clients.popitem(last=False)[1].close()
            return client

    def send(self, url: str, message: Message) -> SendResult:
        """One attempt, over by ``timeout_seconds`` from now whatever the receiver does."""
        _deadline.at = time.monotonic() + self._settings.timeout_seconds
        try:
            return self._send(url, message)
        except httpcore.TimeoutException:
            return SendResult(error=f"no answer within {self._settings.timeout_seconds:g} s")
        except Exception as exc:  # whatever fails, the attempt is a failed one, never stuck
            return SendResult(error=f"{type(exc).__name__}: {exc}"[:1024])
        finally:
            del _deadline.at

    def _send(self, url: str, message: Message) -> SendResult:
        try:
            scheme, host, port = parse_url(url, self._settings)
        except InvalidWebhookUrl as exc:  # valid when stored; the settings may have changed since
            return SendResult(error=exc.message)
        try:
            literal = ipaddress.ip_address(host)
            addresses: Sequence[str] = [str(literal)]
        except ValueError:
            try:
                # The lookup is part of the attempt: it ends by the attempt's deadline too.
                addresses = resolver(_bound(self._settings.dns_timeout_seconds))(host, port)
            except OSError as exc:
                return SendResult(error=f"cannot resolve {host}: {exc}")
        for address in addresses:
            refusal = address_refusal(address, self._settings.allow_private)
            if refusal:
                return SendResult(error=f"refused: {host} resolves to a forbidden address: {refusal}")
        if not addresses:
            return SendResult(error=f"{host} resolves to no address")
        # Each checked address in the resolver's order, the next only when one refuses the
        # connection (no request reached it, so none is sent twice).
        for address in addresses[:-1]:
            try:
                return self._post(url, scheme, host, address, port, message)
            except httpcore.ConnectError:
                continue
        return self._post(url, scheme, host, addresses[-1], port, message)

    def _post(
        self, url: str, scheme: str, host: str, address: str, port: int, message: Message
    ) -> SendResult:
        parts = urlsplit(url)
        netloc = f"[{address}]" if ":" in address else address
        target = urlunsplit((scheme, f"{netloc}:{port}", parts.path or "/", parts.query, ""))
        timestamp = datetime.now(UTC)
        body = message.body.encode()
        headers: dict[str | bytes, str | bytes] = {
            "host": parts.netloc.rpartition("@")[2],
            "content-type": "application/json",
            "content-length": str(len(body)),
            "user-agent": USER_AGENT,
            "webhook-id": message.id,
            "webhook-timestamp": str(int(timestamp.timestamp())),
            "webhook-signature": signature(message, timestamp),
        }
        client = self._client((scheme, host, address, port))
        timeout = self._settings.timeout_seconds
        extensions: dict[str, Any] = {"timeout": dict.fromkeys(("connect", "read", "write", "pool"), timeout)}
        if scheme == "https":
            extensions["sni_hostname"] = host
        with client.stream("POST", target, content=body, headers=headers, extensions=extensions) as response:
            code = response.status
        return SendResult(code, "" if 200 <= code < 300 else f"HTTP {code}")


class DeliveryWorker:
    """Fans events out and sends due deliveries, ``settings.concurrency`` requests at a time, on
    a daemon thread, from start() to stop() (the registry's server calls both)."""

    def __init__(
        self,
        store: SqlWebhookStore,
        sender: HttpSender,
        settings: WebhookSettings,
        lost_access: Callable[[str, int | None, str], str],
    ) -> None:
        self._store = store
        self._lost_access = lost_access
        self._sender = sender
        self._settings = settings
        self.name = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._slots = threading.Semaphore(settings.concurrency)
        self._pool = ThreadPoolExecutor(settings.concurrency, thread_name_prefix="modelreg-webhook-send")

    def start(self) -> None:
        threading.Thread(target=self._run, name="modelreg-webhook-worker", daemon=True).start()

    def stop(self) -> None:
        """Ends the loop; requests in flight finish (their leases cover them), no new one starts."""
        self._stop.set()
        self._wake.set()
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _run(self) -> None:
        pruned_at = 0.0
        while not self._stop.is_set():
            try:
                if time.monotonic() - pruned_at >= self._settings.prune_seconds:
                    pruned_at = time.monotonic()
                    deleted = self._store.prune(int(self._settings.retention_days * 86_400_000))
                    if deleted:
                        log.info("deleted %d webhook deliveries past their retention", deleted)
                self.run_once()
            except Exception:  # a database away for a while: try again next time
                if not self._stop.is_set():  # stopping: the pool refuses new requests
                    log.warning("webhook delivery pass failed", exc_info=True)
            self._wake.wait(self._settings.poll_seconds)
            self._wake.clear()

    def run_once(self) -> int:
        """One pass: fan out new events, claim due heads for the free slots; returns the claims."""
        self._store.fan_out(FAN_OUT_BATCH)
        free = 0
        while self._slots.acquire(blocking=False):
            free += 1
        jobs: list[Job] = []
        try:
            if free:
                jobs = self._store.claim(self.name, free, int(self._settings.lease_seconds * 1000))
        finally:
            for _ in range(free - len(jobs)):
                self._slots.release()
        for job in jobs:
            self._pool.submit(self._deliver, job)
        return len(jobs)

    def _deliver(self, job: Job) -> None:
        try:
            # Checked at every attempt: a subscriber who lost access gets nothing more.
            refusal = self._lost_access(job.created_by, job.model_id, job.model_name)
            if refusal:
                self._store.disable(job, refusal)
                log.warning("webhook %s made inactive: %s", job.delivery.webhook_id, refusal)
                return
            message = Message(job.delivery.message_id, event_body(job.event), job.secrets)
            result = self._sender.send(job.url, message)
            delay = None if result.success else retry_delay(self._settings, job.delivery.attempts + 1)
            retry_ms = None if delay is None else int(delay * 1000)
            self._store.finish(job, result, retry_ms)
            if not result.success:
                dead = retry_ms is None
                log.log(
                    logging.WARNING if dead else logging.INFO,
                    "webhook delivery %s to %s failed%s: %s",
                    message.id,
                    loggable_url(job.url),
                    " for the last time, it is dead" if dead else "",
                    result.error,
                )
        except Exception:  # the lease expires and the attempt is made again
            log.warning("webhook delivery %d failed", job.delivery.id, exc_info=True)
        finally:
            self._slots.release()
            self._wake.set()  # its webhook's next event may go now
