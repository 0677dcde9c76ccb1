"""The server interceptor: error mapping, request id and actor, and one log line per call."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import re
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import grpc

from modelreg import wire
from modelreg_server.access.authenticator import Authenticator
from modelreg_server.context import ANONYMOUS_ACTOR, CallContext, begin_call, require_bounded
from modelreg_server.errors import ServiceError
from modelreg_server.grpc_errors import internal_status, status_from_error
from modelreg_server.idempotency import WriteKey
from modelreg_server.streams import ServerStream, Streams

log = logging.getLogger("modelreg.calls")
# How often the credentials of a client stream are checked again (the authenticator caches them
# for half a second, so most checks are a dict lookup).
RECHECK_SECONDS = 0.5
_CALL_LINE = "service=%s method=%s code=%s duration_ms=%s request_id=%s actor=%s via=%s"

CallObserver = Callable[[str, str, float], None]
"""Called after each call with (method, status code name, seconds): the metrics hook."""


if TYPE_CHECKING:
    _ServerInterceptor = grpc.ServerInterceptor[Any, Any]
else:  # grpc's runtime class is not generic; only the grpc-stubs type is.
    _ServerInterceptor = grpc.ServerInterceptor


class ServiceInterceptor(_ServerInterceptor):
    """Wraps every handler of a service.

    - ServiceError → its status code with one ErrorInfo (``domain``); any other exception →
      INTERNAL, the traceback logged with the request id, nothing leaked to the caller. A call
      whose client went away (cancelled, past its deadline, disconnected or killed) is logged as
      CANCELLED (DEADLINE_EXCEEDED) without a traceback: the error it raises, e.g. while reading
      an upload stream, is the client's doing, and nobody is left to receive a status.
    - Authenticates the call when given an ``authenticator`` (access control on): the principal
      from ``authorization`` (and ``x-modelreg-on-behalf-of`` from a service) is the actor, and
      ``x-modelreg-actor`` is ignored. Without one, the call has no principal (everything is
      allowed) and the actor is the name the client claims in ``x-modelreg-actor``.
    - Reads ``x-request-id`` (generated when absent) into the call's CallContext
      (modelreg_server.context), which the servicers pass on explicitly, and
      ``x-modelreg-idempotency-key`` into its ``write``: the key, the method's name and the sha256
      of the request's deterministic serialization (empty for a client stream, whose messages the
      domain digests one by one).
    - Admits streams through ``streams`` (modelreg_server.streams): a bounded number at once of
      either direction, each message awaited (client streams) or taken by the client (server
      streams) within a bounded time. Without it, streams are unlimited. A server stream cut for
      being over a limit is logged as DEADLINE_EXCEEDED with ``reason`` STREAM_IDLE or
      STREAM_TOO_LONG (its client, which stopped reading, gets CANCELLED).
    - Logs one line per call on ``modelreg.calls``: service, method, code, duration, request id,
      actor, and the service it came through (``via``). The message is ``key=value`` text; the
      same fields ride on the record as ``call`` so the JSON formatter (MODELREG_LOG_FORMAT=json)
      emits them as top-level keys.
    """

    def __init__(
        self,
        service: str,
        domain: str,
        *,
        observer: CallObserver | None = None,
        authenticator: Authenticator | None = None,
        streams: Streams | None = None,
        unslotted: frozenset[str] = frozenset(),
    ) -> None:
        self._service = service
        # Server-streaming methods bounded by their own limit rather than the stream slots.
        self._unslotted = unslotted
        self._domain = domain
        self._observer = observer
        self._authenticator = authenticator
        self._streams = streams
        # grpc asks the interceptor for a handler on every call; a service's handlers never change
        # once the server runs, so each method is wrapped once.
        self._wrapped: dict[str, grpc.RpcMethodHandler[Any, Any]] = {}

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler[Any, Any] | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        method = handler_call_details.method
        wrapped = self._wrapped.get(method)
        if wrapped is not None:
            return wrapped
        handler = continuation(handler_call_details)
        # Health answers load balancers, which hold no credentials; reflection is authenticated.
        if handler is None or method.startswith("/grpc.health."):
            return handler
        wrapped = self._wrap(method, handler)
        self._wrapped[method] = wrapped
        return wrapped

    def _wrap(self, method: str, handler: grpc.RpcMethodHandler[Any, Any]) -> grpc.RpcMethodHandler[Any, Any]:
        if handler.unary_unary:
            return grpc.unary_unary_rpc_method_handler(
                self._wrap_unary(method, handler.unary_unary),
                handler.request_deserializer,
                handler.response_serializer,
            )
        if handler.stream_unary:
            return grpc.stream_unary_rpc_method_handler(
                self._wrap_unary(method, handler.stream_unary, streams_requests=True),
                handler.request_deserializer,
                handler.response_serializer,
            )
        if handler.unary_stream:
            return grpc.unary_stream_rpc_method_handler(
                self._wrap_stream(method, handler.unary_stream),
                handler.request_deserializer,
                handler.response_serializer,
            )
        assert handler.stream_stream is not None
        return grpc.stream_stream_rpc_method_handler(
            self._wrap_stream(method, handler.stream_stream, streams_requests=True),
            handler.request_deserializer,
            handler.response_serializer,
        )

    def _begin(
        self, context: grpc.ServicerContext, method: str, request: Any = None
    ) -> tuple[CallContext, str | None, str | None]:
        """The call as claimed (logged even if authentication fails), and its credentials;
        ``request`` is the request of a unary call (None for a client stream)."""
        request_id = actor = authorization = on_behalf_of = idempotency_key = None
        for key, value in context.invocation_metadata():  # a few pairs: a scan beats a dict copy
            if key == wire.REQUEST_ID_HEADER:
                request_id = value
            elif key == wire.ACTOR_HEADER:
                actor = value
            elif key == wire.AUTHORIZATION_HEADER:
                authorization = value
            elif key == wire.ON_BEHALF_HEADER:
                on_behalf_of = value
            elif key == wire.IDEMPOTENCY_HEADER:
                idempotency_key = value
        claimed = ANONYMOUS_ACTOR if self._authenticator is not None else str(actor or ANONYMOUS_ACTOR)
        write = None
        if idempotency_key is not None:
            serialize = getattr(request, "SerializeToString", None)
            body: bytes = serialize(deterministic=True) if serialize is not None else b""
            digest = hashlib.sha256(body).hexdigest() if request is not None else ""
            write = WriteKey(str(idempotency_key), method[method.rfind("/") + 1 :], digest)
        call = CallContext(actor=claimed, request_id=str(request_id or uuid.uuid4().hex), write=write)
        return call, _text(authorization), _text(on_behalf_of)

    def _authenticate(
        self, method: str, call: CallContext, authorization: str | None, on_behalf_of: str | None
    ) -> CallContext:
        if self._authenticator is not None:
            principal = self._authenticator.authenticate(
                authorization, on_behalf_of, reads_only=_on_behalf_allowed(method)
            )
            call = dataclasses.replace(call, actor=principal.name, principal=principal)
        require_bounded(call)
        begin_call(call)
        return call

    def _fail(self, exc: Exception, context: grpc.ServicerContext, method: str, call: CallContext) -> None:
        request_id = call.request_id
        if not context.is_active():
            # abort() on a finished call sends nothing; it records the code _finish logs, and grpc
            # does not log an aborted call's exception.
            context.abort(_gone_code(context), "the client went away")
        if isinstance(exc, ServiceError):
            context.abort_with_status(status_from_error(exc, self._domain))
        # context.abort() raised by a handler has already set the status: let it through.
        if _status_code(context) not in (None, grpc.StatusCode.OK):
            raise exc
        log.exception("unhandled error in %s (request id %s)", method, request_id)
        context.abort_with_status(internal_status(self._domain, request_id))

    def _finish(
        self,
        method: str,
        context: grpc.ServicerContext,
        started: float,
        call: CallContext,
        cut: ServiceError | None = None,
    ) -> None:
        """Logs the call; ``cut`` is the limit a server stream was cancelled for."""
        seconds = time.perf_counter() - started
        # Still active: the status is about to be sent. Not: the client left before it.
        code = _status_code(context) or (grpc.StatusCode.OK if context.is_active() else _gone_code(context))
        if cut is not None:
            code = grpc.StatusCode[cut.kind.value]
        code_name = code.name if isinstance(code, grpc.StatusCode) else str(code)
        if self._observer is not None:
            self._observer(method, code_name, seconds)
        if not log.isEnabledFor(logging.INFO):
            return
        fields = {
            "service": self._service,
            "method": method[method.rfind("/") + 1 :],
            "code": code_name,
            "duration_ms": round(seconds * 1000, 3),
            "request_id": call.request_id,
            "actor": call.actor,
            "via": (call.principal.via or "-") if call.principal is not None else "-",
        }
        line = _CALL_LINE
        if cut is not None:
            fields["reason"] = cut.reason
            line += " reason=%s"
        # %-style: the text is only built if a handler formats the record. Values are quoted
        # where they could pass for more fields (an actor "alice code=OK"); JSON gets them raw.
        log.info(line, *map(_logfmt, fields.values()), extra={"call": fields})

    def _rechecked(
        self, method: str, requests: Iterator[Any], authorization: str | None, on_behalf_of: str | None
    ) -> Iterator[Any]:
        """The request stream, its credentials checked again every RECHECK_SECONDS: a token
        revoked while an upload or a metric stream runs stops it within that bound too."""
        authenticator = self._authenticator
        if authenticator is None:
            yield from requests
            return
        due = time.monotonic() + RECHECK_SECONDS
        for request in requests:
            if time.monotonic() >= due:
                authenticator.authenticate(authorization, on_behalf_of, reads_only=_on_behalf_allowed(method))
                due = time.monotonic() + RECHECK_SECONDS
            yield request

    @contextmanager
    def _client_stream(
        self, method: str, requests: Iterator[Any], authorization: str | None, on_behalf_of: str | None
    ) -> Iterator[Iterator[Any]]:
        """A client stream's requests as the handler reads them: admitted under the stream limits
        (a slot held until the handler returns) and their credentials rechecked."""
        if self._streams is None:
            yield self._rechecked(method, requests, authorization, on_behalf_of)
            return
        with self._streams.admitted(requests) as limited:
            yield self._rechecked(method, limited, authorization, on_behalf_of)

    def _wrap_unary(
        self,
        method: str,
        behavior: Callable[[Any, grpc.ServicerContext], Any],
        *,
        streams_requests: bool = False,
    ) -> Any:
        def wrapped(request: Any, context: grpc.ServicerContext) -> Any:
            started = time.perf_counter()
            call, authorization, on_behalf_of = self._begin(
                context, method, None if streams_requests else request
            )
            try:
                call = self._authenticate(method, call, authorization, on_behalf_of)
                if streams_requests:
                    with self._client_stream(method, request, authorization, on_behalf_of) as requests:
                        return behavior(requests, context)
                return behavior(request, context)
            except Exception as exc:
                self._fail(exc, context, method, call)
            finally:
                self._finish(method, context, started, call)

        return wrapped

    def _wrap_stream(
        self,
        method: str,
        behavior: Callable[[Any, grpc.ServicerContext], Iterator[Any]],
        *,
        streams_requests: bool = False,
    ) -> Any:
        def wrapped(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
            started = time.perf_counter()
            call, authorization, on_behalf_of = self._begin(
                context, method, None if streams_requests else request
            )
            stream: ServerStream | None = None
            try:
                call = self._authenticate(method, call, authorization, on_behalf_of)
                if streams_requests:  # bidirectional: bounded as a client stream
                    with self._client_stream(method, request, authorization, on_behalf_of) as requests:
                        yield from behavior(requests, context)
                elif self._streams is None:
                    yield from behavior(request, context)
                else:
                    with self._streams.sending(context, slot=method not in self._unslotted) as stream:
                        yield from stream.responses(behavior(request, context))
            except Exception as exc:
                self._fail(exc, context, method, call)
            finally:
                self._finish(method, context, started, call, stream.cut if stream is not None else None)

        return wrapped


# Methods that change nothing: the only ones a service may call on behalf of an end user. The
# access API is not among them (listing users or tokens as someone else is never needed).
_READ_PREFIXES = ("Get", "Search", "List", "Stat", "Download", "Resolve")


# Sealing forbids later uploads to a path and changes nothing else; the registry seals a run's
# files for the user who registers them, as part of checking the run as that user.
_ON_BEHALF_WRITES = frozenset({"/modelreg.tracking.v1.TrackingService/SealArtifacts"})


def _on_behalf_allowed(method: str) -> bool:
    """Whether a service may make this call for an end user: reads, and sealing."""
    service, _, name = method.rpartition("/")
    if method in _ON_BEHALF_WRITES:
        return True
    return not service.startswith("/modelreg.access.") and name.startswith(_READ_PREFIXES)


_PLAIN = re.compile(r'[^\s="\\]+')


def _logfmt(value: object) -> str:
    """``value`` as one key=value field: as it is when it is a plain token, else JSON-quoted."""
    text = str(value)
    return text if _PLAIN.fullmatch(text) else json.dumps(text)


def _text(value: str | bytes | None) -> str | None:
    """Metadata values of ``-bin`` keys arrive as bytes; credentials are text."""
    return value.decode("latin-1") if isinstance(value, bytes) else value


def _gone_code(context: grpc.ServicerContext) -> grpc.StatusCode:
    """Why a call ended before its status was sent: its deadline passed, or the client left."""
    remaining = context.time_remaining()
    expired = remaining is not None and remaining <= 0
    return grpc.StatusCode.DEADLINE_EXCEEDED if expired else grpc.StatusCode.CANCELLED


def _status_code(context: grpc.ServicerContext) -> grpc.StatusCode | None:
    # ServicerContext.code() exists at run time (grpcio >= 1.38) but not in the type stubs.
    code: grpc.StatusCode | None = getattr(context, "code")()  # noqa: B009
    return code
