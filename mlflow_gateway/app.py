"""The ASGI application: routing, credentials, body limits, and MLflow's error JSON for every failure.

Each :class:`~mlflow_gateway.endpoint.Endpoint` is served under every prefix MLflow's client and
UI use: ``/api/2.0``, ``/api/3.0``, ``/ajax-api/2.0`` and ``/ajax-api/3.0``. Handlers are plain
functions calling the (blocking) modelreg client; they run on Starlette's thread pool inside
:func:`modelreg.wire.calling_as`, so each service call carries the HTTP caller's credentials:

- ``Authorization: Bearer <token>`` (what ``MLFLOW_TRACKING_TOKEN`` sends): the modelreg token.
- ``Authorization: Basic`` (``MLFLOW_TRACKING_USERNAME``/``PASSWORD``): the password is the
  token, the user name the actor recorded when access control is off.
- nothing: no token; the services refuse the call when access control is on (401).

The gateway never authenticates or authorizes anything itself and holds no credentials of its
own: the services decide, by resource id, on every call, exactly as for a gRPC caller.

Endpoints outside modelreg's scope (traces, the AI gateway, prompts, GenAI datasets, ...) answer
``ENDPOINT_NOT_FOUND`` with 501; an unknown path answers ``ENDPOINT_NOT_FOUND`` with 404.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import re
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, contextmanager
from typing import Any
from urllib.parse import parse_qs

import anyio
import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Match, Route, Router
from starlette.types import Receive, Scope, Send

from mlflow_gateway import artifacts, logged_models, registry, tracking
from mlflow_gateway.endpoint import Call, Endpoint, Json, Services
from mlflow_gateway.protocol import Fields, MlflowError, load_json
from mlflow_gateway.settings import GatewaySettings
from modelreg import RegistryClient, TrackingClient, wire
from modelreg.exceptions import ModelregError

log = logging.getLogger("modelreg.mlflow")

API_PREFIXES = ("/api/2.0", "/api/3.0", "/ajax-api/2.0", "/ajax-api/3.0")
# MLflow's areas this endpoint does not serve (GenAI and platform features): 501, never a 500.
OUT_OF_SCOPE = (
    "traces",
    "unified-traces",
    "get-online-trace-details",
    "assessments",
    "issues",
    "label-schemas",
    "datasets",
    "scorers",
    "gateway",
    "prompt-optimization",
    "review-queues",
    "webhooks",
    "workspaces",
    "experiments/search-datasets",
    "artifacts/presigned-upload-url",
    "artifacts/presigned-download-url",
    "server-features",
)
OUT_OF_SCOPE_ARTIFACTS = ("mpu", "presigned")
DEFAULT_ACTOR = "mlflow-client"
VERSION = "3.17.2"  # the MLflow release whose REST API this endpoint follows; /version says it
# Service calls running at once (each blocks a thread while it waits for its answer); more wait
# for a thread. The same as Starlette's thread pool, which the artifact relays use.
CALL_THREADS = 40


class MlflowJSONResponse(JSONResponse):
    """MLflow's JSON, rendered by orjson (the largest answers, a thousand runs, are several times
    faster to encode than with the standard library). Doubles are finite here: the one double MLflow
    answers, a metric's value, is given its protobuf JSON form by :func:`convert.metric` when it is
    NaN or infinite (orjson would write null)."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def error_response(error: MlflowError, rid: str | None = None) -> Response:
    """MLflow's error JSON; ``rid``: the request id the answer names."""
    return MlflowJSONResponse(
        error.body(), status_code=error.status, headers={"x-request-id": rid} if rid else None
    )


_REQUEST_ID = re.compile(r"[!-~]{1,128}")


def request_id(request: Request) -> str:
    """The caller's ``X-Request-Id`` when it is a plausible one (visible ASCII, at most 128
    characters), else a fresh id: every service call of one HTTP request carries it, so the
    endpoint's and both services' logs name the request alike."""
    given = request.headers.get("x-request-id", "")
    return given if _REQUEST_ID.fullmatch(given) else wire.new_request_id()


@contextmanager
def relaying(actor: str, token: str | None, rid: str) -> Iterator[None]:
    """Service calls made inside the block carry the HTTP caller's actor, token and request id."""
    with wire.calling_as(actor, token), wire.forwarding_request_id(rid):
        yield


# What gRPC metadata can carry, as the services accept it: a token of visible ASCII, an actor of
# printable ASCII (the services refuse control characters in actors, and at most 250 characters).
_TOKEN = re.compile(r"[!-~]{1,4096}")
_ACTOR = re.compile(r"[ -~]{1,250}")


def credentials(request: Request) -> tuple[str, str | None]:
    """(actor, token) from the Authorization header; MlflowError UNAUTHENTICATED when it is
    malformed or holds what a service call cannot carry (non-ASCII, control characters)."""
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if not header:
        return DEFAULT_ACTOR, None
    if scheme.lower() == "bearer" and value.strip():
        token = value.strip()
        if not _TOKEN.fullmatch(token):
            raise MlflowError("UNAUTHENTICATED", "Authorization: the token is not visible ASCII")
        return DEFAULT_ACTOR, token
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode()
        except ValueError:  # bad base64 (binascii.Error), non-ASCII base64, not UTF-8
            raise MlflowError("UNAUTHENTICATED", "Authorization: malformed Basic credentials") from None
        user, _, password = decoded.partition(":")
        if (user and not _ACTOR.fullmatch(user)) or (password and not _TOKEN.fullmatch(password)):
            raise MlflowError(
                "UNAUTHENTICATED",
                "Authorization: Basic credentials need a printable ASCII user name (up to 250 "
                "characters) and a visible ASCII password",
            )
        return user or DEFAULT_ACTOR, password or None
    raise MlflowError("UNAUTHENTICATED", "Authorization: expected 'Bearer <token>' or Basic credentials")


def _stalled(timeout_seconds: float) -> MlflowError:
    return MlflowError(
        "DEADLINE_EXCEEDED", f"request body: nothing received for {timeout_seconds:g} s", status=408
    )


async def body_chunks(request: Request, timeout_seconds: float) -> AsyncIterator[bytes]:
    """The request body as it arrives; 408 DEADLINE_EXCEEDED (which MLflow's client retries) when
    the client sends nothing for ``timeout_seconds``: a stalled body must not hold a connection
    and its buffers forever. One timer per chunk: a deadline moved on per chunk, as in
    :func:`read_fields`, would be a cancel scope spanning this generator's yields."""
    chunks = request.stream()
    while True:
        try:
            with anyio.fail_after(timeout_seconds):
                chunk = await anext(chunks)
        except StopAsyncIteration:
            return
        except TimeoutError:
            raise _stalled(timeout_seconds) from None
        yield chunk


async def read_fields(request: Request, max_body_bytes: int, body_timeout_seconds: float) -> Fields:
    """The request's fields: the query string for GET (and DELETE without a body), else the JSON body.
    The body is read under one deadline, moved on by each chunk that arrives (408 as in
    :func:`body_chunks`): one timer a request rather than one a chunk. A request without
    Content-Length or Transfer-Encoding has no body in HTTP/1.1 (and in uvicorn): none is read."""
    # ASCII through uvicorn (its parsers refuse other bytes in a query); latin-1 never fails.
    query = parse_qs(request.scope["query_string"].decode("latin-1"), keep_blank_values=True)
    body = bytearray()
    headers = request.headers
    if "content-length" in headers or "transfer-encoding" in headers:
        with anyio.move_on_after(body_timeout_seconds) as idle:
            async for chunk in request.stream():
                body += chunk
                if len(body) > max_body_bytes:
                    raise MlflowError(
                        "RESOURCE_EXHAUSTED", f"request body: over {max_body_bytes} bytes", status=413
                    )
                idle.deadline = anyio.current_time() + body_timeout_seconds
        if idle.cancelled_caught:
            raise _stalled(body_timeout_seconds)
    if not body.strip():
        return Fields(query, from_query=True)
    try:
        values = load_json(body)
    except ValueError as exc:  # malformed, not UTF-8, an integer past the digit limit, too deep
        raise MlflowError.invalid(f"request body: malformed JSON ({exc})") from None
    if not isinstance(values, dict):
        raise MlflowError.invalid("request body: expected a JSON object")
    if query:  # MLflow's client never mixes the two; refusing keeps one meaning per request
        raise MlflowError.invalid("request: fields in both the query string and the JSON body")
    return Fields(values)


class Gateway:
    """The application's state: settings and the two service clients (thread-safe, shared)."""

    def __init__(self, settings: GatewaySettings, services: Services | None = None) -> None:
        self.settings = settings
        self.services = services or Services(
            tracking=TrackingClient(settings.tracking_uri, retry_seconds=settings.retry_seconds),
            registry=RegistryClient(settings.registry_uri, retry_seconds=settings.retry_seconds),
        )
        self._calls = ThreadPoolExecutor(CALL_THREADS, thread_name_prefix="mlflow-call")

    def in_thread(self, function: Callable[[], Json]) -> asyncio.Future[Json]:
        """``function``'s result, run on a thread of the endpoint's own. asyncio's executor hop
        costs about half of anyio's (no limiter, no context copy); a JSON call needs neither, and
        nothing touches its state once it is cancelled (the artifact relays, which do, keep
        anyio's, which waits for the thread)."""
        return asyncio.get_running_loop().run_in_executor(self._calls, function)

    def close(self, *, services_too: bool) -> None:
        """Drops the calls not started; closes the service clients when they are the gateway's,
        which ends the calls under way (the event loop is not held waiting for them)."""
        self._calls.shutdown(wait=False, cancel_futures=True)
        if services_too:
            self.services.tracking.close()
            self.services.registry.close()

    def json_route(self, endpoint: Endpoint, prefix: str) -> Route:
        max_body = self.settings.max_body_bytes
        body_timeout = self.settings.body_timeout_seconds
        services = self.services

        async def serve(request: Request) -> Response:
            rid = request_id(request)
            try:
                actor, token = credentials(request)
                fields = await read_fields(request, max_body, body_timeout)
                fields.refuse_unknown(endpoint.fields)
                call = Call(fields=fields, path_params=dict(request.path_params), services=services)

                def run() -> Json:
                    with relaying(actor, token, rid):
                        return endpoint.handler(call)

                return MlflowJSONResponse(await self.in_thread(run), headers={"x-request-id": rid})
            except MlflowError as error:
                return error_response(error, rid)
            except ModelregError as error:
                return error_response(MlflowError.from_modelreg(error), rid)

        return Route(prefix + endpoint.path, serve, methods=[endpoint.method], name=None)

    def routes(self) -> list[BaseRoute]:
        endpoints: Sequence[Endpoint] = (
            *tracking.ENDPOINTS,
            *registry.ENDPOINTS,
            *logged_models.ENDPOINTS,
        )
        routes: list[BaseRoute] = [
            Route("/health", health, methods=["GET"]),
            Route("/version", version, methods=["GET"]),
        ]
        for prefix in API_PREFIXES:
            routes.append(Route(prefix + "/mlflow/server-info", self.server_info, methods=["GET"]))
            routes.extend(self.json_route(endpoint, prefix) for endpoint in endpoints)
        routes.extend(artifacts.routes(self))
        return routes

    async def server_info(self, _request: Request) -> Response:
        """What MLflow's client asks before it uploads: no multipart, no presigned URLs, no workspaces."""
        return MlflowJSONResponse(
            {
                "store_type": None,
                "workspaces_enabled": False,
                "trace_archival_enabled": False,
                "multipart_uploads_enabled": False,
                "multipart_downloads_enabled": False,
            }
        )


# Coroutines: Starlette would run a plain function's endpoint on a thread.
async def health(_request: Request) -> Response:
    return PlainTextResponse("OK")


async def version(_request: Request) -> Response:
    return PlainTextResponse(VERSION)


def out_of_scope(path: str) -> bool:
    for prefix in API_PREFIXES:
        if path.startswith(prefix + "/mlflow/"):
            rest = path.removeprefix(prefix + "/mlflow/")
            return any(rest == area or rest.startswith(area + "/") for area in OUT_OF_SCOPE)
        if path.startswith(prefix + "/mlflow-artifacts/"):
            rest = path.removeprefix(prefix + "/mlflow-artifacts/")
            return rest.split("/", 1)[0] in OUT_OF_SCOPE_ARTIFACTS
    return False


async def not_served(request: Request, exc: Exception) -> Response:
    """404 and 405 from routing (and any other HTTPException) as MLflow's error JSON."""
    status = exc.status_code if isinstance(exc, HTTPException) else 404
    path = request.url.path
    if out_of_scope(path):
        message = (
            f"{request.method} {path}: not served by modelreg's MLflow endpoint (tracking and registry only)"
        )
        return error_response(MlflowError("ENDPOINT_NOT_FOUND", message, status=501))
    if status == 405:
        return error_response(
            MlflowError("ENDPOINT_NOT_FOUND", f"{request.method} is not allowed on {path}", status=405)
        )
    return error_response(
        MlflowError("ENDPOINT_NOT_FOUND", f"no endpoint {request.method} {path}", status=status)
    )


async def failed(request: Request, exc: Exception) -> Response:
    """A bug: logged with its traceback here, a generic 500 to the caller (never a traceback)."""
    log.exception("unhandled error serving %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(MlflowError("INTERNAL_ERROR", "internal error; the endpoint's log has the details"))


class IndexedRouter(Router):
    """Starlette's router, trying only the routes that could match a path rather than each of the
    ~250 in turn: a route of a fixed path only for that path (a dictionary lookup), a route with
    parameters only for paths that start with its fixed part. Starlette tries ~5 µs a route here,
    so a registry path near the end of the list cost ~0.25 ms and an artifact ~0.45 ms. The routes
    tried keep their order, so what matches, 405 and 404 are Starlette's answers, unchanged."""

    def __init__(self, routes: Sequence[BaseRoute], lifespan: Any) -> None:
        super().__init__(list(routes), redirect_slashes=False, lifespan=lifespan)
        fixed = {
            order: route.path
            for order, route in enumerate(self.routes)
            if isinstance(route, Route) and not route.param_convertors
        }
        # A Route's fixed part ends at its first parameter; any other kind may match any path.
        patterned = [
            (order, route.path.split("{", 1)[0] if isinstance(route, Route) else "", route)
            for order, route in enumerate(self.routes)
            if order not in fixed
        ]
        self._by_prefix = [(prefix, route) for _, prefix, route in patterned]
        self._by_path: dict[str, list[BaseRoute]] = {}
        for path in set(fixed.values()):
            orders = [order for order, other in fixed.items() if other == path]
            orders += [order for order, prefix, _ in patterned if path.startswith(prefix)]
            self._by_path[path] = [self.routes[order] for order in sorted(orders)]

    def candidates(self, path: str) -> list[BaseRoute]:
        """The routes that could match ``path``, in the router's order. A route's pattern ends in
        ``$``, which also matches before a final newline (``%0A``): such a path is looked up
        without it, as Starlette would match it."""
        found = self._by_path.get(path.removesuffix("\n"))
        return found if found is not None else [r for prefix, r in self._by_prefix if path.startswith(prefix)]

    async def app(self, scope: Scope, receive: Receive, send: Send) -> None:
        # The lifespan, and an app mounted under a root path (which Starlette matches without it).
        if scope["type"] != "http" or scope.get("root_path"):
            await super().app(scope, receive, send)
            return
        scope.setdefault("router", self)
        partial: tuple[BaseRoute, Scope] | None = None
        for route in self.candidates(scope["path"]):
            match, child_scope = route.matches(scope)
            if match is Match.FULL:
                scope["route"] = route
                scope.update(child_scope)
                await route.handle(scope, receive, send)
                return
            if match is Match.PARTIAL and partial is None:
                partial = (route, child_scope)
        if partial is not None:  # the path is served, not with this method: 405
            route, child_scope = partial
            scope["route"] = route
            scope.update(child_scope)
            await route.handle(scope, receive, send)
            return
        await self.default(scope, receive, send)


def create_app(settings: GatewaySettings | None = None, services: Services | None = None) -> Starlette:
    """The ASGI app. ``services``: clients to use instead of ones opened from ``settings``."""
    gateway = Gateway(settings or GatewaySettings.from_env(), services)

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            gateway.close(services_too=services is None)

    app = Starlette(exception_handlers={HTTPException: not_served, Exception: failed})
    # Set before the first request builds the middleware around it. A path with a trailing slash
    # is another path (404 JSON), not a 307 to one without it.
    app.router = IndexedRouter(gateway.routes(), lifespan)
    return app
