"""The HTTP side of ``modelreg serve``: an ASGI app speaking MLflow's scoring protocol.

Routes: POST /invocations (:mod:`modelreg.serving.scoring`), GET /ping (200 once a model is
loaded, else 503), /health (JSON: status, version, following), /version (the modelreg client's
version, as text), /metadata (the served version's metadata), /metrics (Prometheus).

Every response carries ``x-modelreg-model-version`` (the version that answered: for /invocations
the leased one, else the current one; ``none`` before a model is loaded or for runs:/ URIs) and
``x-request-id`` (the caller's when it is a token of at most 128 letters, digits and ``._:-``,
else a new one). A body larger than ``max_body_bytes`` is refused with 413 while it streams in,
one slower than ``body_timeout_seconds`` with 408; at most ``max_concurrent`` requests are read and
scored at once (later ones wait before their body is read), so a worker buffers at most that many
bodies. Parsing and prediction run in a worker thread inside
``with slot.lease()``, so a swap never pulls a model from under a request.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any, Protocol

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

import modelreg
from modelreg.models.signature import ModelSignature
from modelreg.serving import logs
from modelreg.serving.metrics import ServingMetrics, version_label
from modelreg.serving.scoring import JSON_TYPE, ScoringError, parse_request, predictions_json

# MLflow sets no limit. 16 MiB holds ~300k rows of a few numeric columns as JSON; parsing can take
# ten times a body's size, so what one worker holds for requests is bounded by
# DEFAULT_MAX_CONCURRENT x (body + its parse): about 1.5 GiB at these defaults in the worst case.
DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024
# Requests read and scored at once per worker; later ones wait before their body is read (holding
# only their connection; uvicorn refuses connections past CONNECTION_LIMIT with 503).
DEFAULT_MAX_CONCURRENT = 8
CONNECTION_LIMIT = 1000
# A body must arrive within this, so a slow sender cannot hold one of the scoring places.
BODY_TIMEOUT_SECONDS = 60.0
MODEL_VERSION_HEADER = "x-modelreg-model-version"
REQUEST_ID_HEADER = "x-request-id"
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
# How much of a model's exception is quoted back to the caller.
_PREDICT_ERROR_CHARS = 1000


class Predictor(Protocol):
    def predict(self, data: Any, params: dict[str, Any] | None = None) -> Any: ...


class ServedVersion(Protocol):
    """What the app reads of ``modelreg.serving.slot.LoadedVersion``."""

    @property
    def version(self) -> int | None: ...
    @property
    def model(self) -> Predictor: ...
    @property
    def signature(self) -> ModelSignature | None: ...
    @property
    def metadata(self) -> Mapping[str, Any]: ...


class Slot(Protocol):
    """What the app uses of ``modelreg.serving.slot.ModelSlot``."""

    def lease(self) -> AbstractContextManager[ServedVersion]: ...
    @property
    def current(self) -> ServedVersion | None: ...
    @property
    def following(self) -> bool: ...
    def stop(self, timeout: float = 10.0) -> None: ...


@dataclass(frozen=True)
class ServeSettings:
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    max_concurrent: int = DEFAULT_MAX_CONCURRENT
    body_timeout_seconds: float = BODY_TIMEOUT_SECONDS


class _TooLarge(Exception):
    pass


def _request_id(given: str | None) -> str:
    return given if given is not None and _SANE_REQUEST_ID.fullmatch(given) else uuid.uuid4().hex


def _error(status: int, message: str, error_code: str = "BAD_REQUEST") -> JSONResponse:
    return JSONResponse({"error_code": error_code, "message": message}, status_code=status)


async def _read_body(request: Request, limit: int) -> bytes:
    """The body, refusing (before reading it) a declared length over ``limit`` and (while reading)
    one that grows past it."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _TooLarge
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _TooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def create_app(slot: Slot, settings: ServeSettings, metrics: ServingMetrics | None = None) -> ASGIApp:
    """The app over ``slot`` (started by the caller); its shutdown stops the slot, after uvicorn
    has finished the requests in flight."""
    metrics = metrics or ServingMetrics()
    scoring_places = asyncio.Semaphore(settings.max_concurrent)

    def current_version() -> int | None:
        loaded = slot.current
        return None if loaded is None else loaded.version

    def score(body: bytes, content_type: str | None) -> tuple[int | None, Response, str | None]:
        """Runs in a worker thread: (the version that answered, the response, the error kind)."""
        with slot.lease() as loaded:
            try:
                parsed = parse_request(body, content_type, loaded.signature)
            except ScoringError as exc:
                kind = "unsupported_media_type" if exc.status == 415 else "bad_request"
                return loaded.version, JSONResponse(exc.to_json(), status_code=exc.status), kind
            try:
                predictions = loaded.model.predict(parsed.data, parsed.params)
                payload = predictions_json(predictions)
            except Exception as exc:
                # As MLflow: a model that cannot take the input is the caller's 400, with the reason.
                logs.logger.warning("prediction failed", exc_info=True)
                reason = f"{type(exc).__name__}: {exc}"[:_PREDICT_ERROR_CHARS]
                message = (
                    "Encountered an unexpected error while evaluating the model. Verify that the input is "
                    f"compatible with the model for inference. Error: {reason}"
                )
                return loaded.version, _error(400, message), "predict"
            return loaded.version, Response(payload, media_type=JSON_TYPE), None

    async def invocations(request: Request) -> Response:
        started = time.perf_counter()
        version = current_version()
        error_kind: str | None = None
        if slot.current is None:
            response: Response = _error(503, "No model is loaded yet.", "TEMPORARILY_UNAVAILABLE")
            error_kind = "unavailable"
        else:
            async with scoring_places:
                try:
                    async with asyncio.timeout(settings.body_timeout_seconds):
                        body = await _read_body(request, settings.max_body_bytes)
                except _TooLarge:
                    response = _error(
                        413,
                        f"The request body is larger than the limit of {settings.max_body_bytes} bytes "
                        "(modelreg serve --max-body-bytes).",
                    )
                    error_kind = "too_large"
                except TimeoutError:
                    response = _error(
                        408, f"The request body did not arrive within {settings.body_timeout_seconds:g} s."
                    )
                    error_kind = "body_timeout"
                except ClientDisconnect:
                    # Nobody reads the answer; 499 (client closed) keeps it apart in logs and metrics.
                    response = _error(499, "The client disconnected while sending the body.")
                    error_kind = "disconnected"
                else:
                    version, response, error_kind = await run_in_threadpool(
                        score, body, request.headers.get("content-type")
                    )
        request.state.model_version = version
        metrics.request(version, response.status_code, time.perf_counter() - started, error_kind)
        return response

    async def ping(request: Request) -> Response:
        loaded = slot.current is not None
        return PlainTextResponse("\n" if loaded else "no model loaded\n", status_code=200 if loaded else 503)

    async def health(request: Request) -> Response:
        loaded = slot.current
        body = {
            "status": "ok" if loaded is not None else "loading",
            "version": None if loaded is None else loaded.version,
            "following": slot.following,
        }
        return JSONResponse(body, status_code=200 if loaded is not None else 503)

    async def version(request: Request) -> Response:
        return PlainTextResponse(modelreg.__version__)

    async def metadata(request: Request) -> Response:
        loaded = slot.current
        if loaded is None:
            return _error(503, "No model is loaded yet.", "TEMPORARILY_UNAVAILABLE")
        return JSONResponse(dict(loaded.metadata))

    async def metrics_route(request: Request) -> Response:
        text, content_type = metrics.render()
        return Response(text, headers={"content-type": content_type})

    @asynccontextmanager
    async def lifespan(app: Starlette) -> Any:
        yield
        await run_in_threadpool(slot.stop)

    app = Starlette(
        routes=[
            Route("/invocations", invocations, methods=["POST"]),
            Route("/ping", ping, methods=["GET"]),
            Route("/health", health, methods=["GET"]),
            Route("/version", version, methods=["GET"]),
            Route("/metadata", metadata, methods=["GET"]),
            Route("/metrics", metrics_route, methods=["GET"]),
        ],
        lifespan=lifespan,
    )
    app.state.metrics = metrics
    return _RequestContext(app, current_version)


class _RequestContext:
    """Outermost ASGI layer: the request id and model version headers on every response, and one
    JSON log line per request (uvicorn's access log is off)."""

    def __init__(self, app: Starlette, current_version: Callable[[], int | None]) -> None:
        self.app = app
        self.current_version = current_version
        self.state = app.state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        given = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"x-request-id"), None)
        request_id = _request_id(given)
        state: dict[str, Any] = scope.setdefault("state", {})
        status = 500

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                version = state.get("model_version", self.current_version())
                state["model_version"] = version
                headers = [
                    (k, v)
                    for k, v in message.get("headers", [])
                    if k.lower() not in (b"x-request-id", MODEL_VERSION_HEADER.encode())
                ]
                headers.append((REQUEST_ID_HEADER.encode(), request_id.encode()))
                headers.append((MODEL_VERSION_HEADER.encode(), version_label(version).encode()))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            logs.log(
                logging.INFO,
                "request",
                request_id=request_id,
                method=scope.get("method"),
                path=scope.get("path"),
                version=state.get("model_version"),
                status=status,
                ms=round((time.perf_counter() - started) * 1000, 3),
            )
