"""The ``mlflow-artifacts`` proxy: uploads, downloads and listings of run files through the tracking service.

MLflow's client reaches a run's files at ``mlflow-artifacts:/<experiment>/<run>/artifacts/<path>``
(:mod:`mlflow_gateway.ids`), which it turns into
``/api/2.0/mlflow-artifacts/artifacts/<experiment>/<run>/artifacts/<path>``:

- ``PUT``: the run is read first as the caller (it must exist and be live, and the caller may
  read it: an anonymous caller is refused when access control is on), so no body is read for a
  request the service would refuse that way. The body is then relayed into the tracking service's
  upload stream as it arrives (:class:`_Body`, :meth:`modelreg.TrackingClient.log_artifact_chunks`)
  by at most ``max_concurrent_uploads`` requests at once (one more is 503
  TEMPORARILY_UNAVAILABLE, which MLflow's client retries by sending the PUT again). A second
  upload to a path replaces the file, as in MLflow, unless the path is sealed (a registered
  version's files: INVALID_STATE).
- ``GET``: the file streamed back as the service sends it, 1 MiB at a time, with its size as
  Content-Length; the stream is checked against the size and sha256 the service recorded, and a
  mismatch is DATA_LOSS (a file up to 1 MiB is checked before the answer) or breaks the
  connection, never ending a damaged file as if it were whole.
- ``GET ?path=<dir>``: the entries directly under ``dir``, named relative to it, as MLflow's server.
- ``GET /ajax-api/2.0/mlflow/logged-models/<id>/artifacts/files?artifact_file_path=``: one file
  of a LoggedModel, for MLflow's UI.
- ``DELETE``: NOT_IMPLEMENTED (501). A run's files stay as logged; they go when the run is
  deleted and collected. MLflow's client never deletes through the proxy (only ``mlflow gc``,
  which runs against an MLflow server's own stores).

Bad paths are INVALID_PARAMETER_VALUE (400) before anything is read or written.

Uploads go straight into the gRPC stream as they arrive, never through a file here: sha256 runs
at about 1 GB/s a core, so each pass over the body counts. The body is hashed once in this
process, by the client, as it is sent; the stream's end declares that size and digest, and the
service hashes its own copy and publishes nothing that disagrees. Consequences, each kept
deliberately:

- The upload cannot be retried here (the body is read once): a stream that breaks
  (UNAVAILABLE) is 503 TEMPORARILY_UNAVAILABLE, and MLflow's client sends the PUT again.
- Nothing is stored unless the whole body arrived: a body that ends early (the client
  disconnects), passes ``max_artifact_bytes`` (413 RESOURCE_EXHAUSTED, checked on the declared
  Content-Length before reading and on the bytes as they arrive) or stalls for
  ``body_timeout_seconds`` (408 DEADLINE_EXCEEDED) ends the stream without its end message.
- An upload holds one of the tracking service's stream slots while its body arrives. A service
  running its limit (``MODELREG_MAX_STREAMS``) refuses it at once: 503, as for the endpoint's own
  slots. The service also cuts a stream that sends nothing for ``MODELREG_STREAM_IDLE_SECONDS``
  (30 s by default): a client whose body stalls that long is answered 408, like one that passes
  the endpoint's own body timeout, whichever is shorter.
- Memory stays flat: the gRPC request iterator runs on a thread of gRPC's and fetches the next
  ~``RELAY_BYTES`` of body from the event loop in one hop per block (``anyio.from_thread.run``);
  a bounded queue fed by a task on the loop was the alternative. Between fetches the HTTP server
  stops reading the socket, so an upload holds about one block here and what gRPC has in
  flight (a few MiB), whatever the client sends.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, TypeVar

import anyio
import anyio.from_thread
import anyio.lowlevel
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from mlflow_gateway import ids
from mlflow_gateway.protocol import MlflowError, int64
from modelreg import entities as e
from modelreg import wire
from modelreg.exceptions import ModelregError

if TYPE_CHECKING:
    from mlflow_gateway.app import Gateway

PREFIXES = ("/api/2.0/mlflow-artifacts", "/ajax-api/2.0/mlflow-artifacts")
# An upload's body is handed to the gRPC stream in blocks of about this size, one hop each.
RELAY_BYTES = 1024 * 1024
# A download's first bytes read before answering: a file this small goes out in one response.
PREFETCH_BYTES = 1024 * 1024

T = TypeVar("T")
Chunk = e.FileInfo | memoryview
Caller = tuple[str, str | None]  # (actor, token), see app.credentials
Handler = Callable[[Request, Caller], Awaitable[Response]]


def routes(gateway: Gateway) -> list[BaseRoute]:
    # app imports this module: its helpers are read once it is loaded.
    from mlflow_gateway.app import MlflowJSONResponse, body_chunks, credentials, error_response, read_fields

    tracking = gateway.services.tracking
    max_bytes = gateway.settings.max_artifact_bytes
    max_body = gateway.settings.max_body_bytes
    body_timeout = gateway.settings.body_timeout_seconds
    uploads = _Slots(gateway.settings.max_concurrent_uploads)

    def served(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def serve(request: Request) -> Response:
            try:
                return await handler(request, credentials(request))
            except MlflowError as error:
                return error_response(error)
            except ModelregError as error:
                return error_response(MlflowError.from_modelreg(error))
            except ClientDisconnect:  # an upload cut short: nothing was stored, and no bug to log
                return error_response(MlflowError("BAD_REQUEST", "the request body ended early"))

        return serve

    async def call(caller: Caller, function: Callable[[], T]) -> T:
        def run() -> T:
            with wire.calling_as(*caller):
                return function()

        return await run_in_threadpool(run)

    async def upload(request: Request, caller: Caller) -> Response:
        run_id, path = ids.proxy_path(request.path_params["artifact_path"])
        if not path:
            raise MlflowError.invalid("artifact path: names the run's root, not a file")
        declared = request.headers.get("content-length", "")
        # The HTTP server has checked it is digits; more digits than an int64 holds is too large too.
        if declared and ((size := int64(declared)) is None or size > max_bytes):
            raise _too_large(max_bytes)
        # Before a byte of the body is read: the service refuses an unknown or deleted run, and a
        # caller who may not read it (anonymous ones too, with access control on). The tracking
        # service has no call that checks EDIT without writing; the upload itself checks EDIT.
        run = await call(caller, lambda: tracking.get_run(run_id))
        if run.info.lifecycle_stage != "active":
            raise MlflowError("INVALID_STATE", f"run '{run_id}' is deleted; restore it first")
        with uploads.taken():
            body = _Body(body_chunks(request, body_timeout), max_bytes)
            try:
                await call(caller, lambda: tracking.log_artifact_chunks(run_id, path, body.blocks()))
            except ModelregError as error:
                raise _upload_refused(error) from None
            finally:
                body.close()
        return MlflowJSONResponse({})

    async def stream_file(caller: Caller, run_id: str, path: str) -> Response:
        relay = _Relay(tracking.artifact_stream(run_id, path), caller)
        # The file's description (or the error) and its first MiB before the status line: a
        # missing file is a 404, and a small file (most model files) goes out whole, checked.
        try:
            await run_in_threadpool(relay.start)
        except BaseException:
            relay.stream.close()
            raise
        if relay.ended:
            relay.stream.close()
            relay.verify()
            return Response(b"".join(relay.head), media_type="application/octet-stream")
        return StreamingResponse(
            relay.body(),
            media_type="application/octet-stream",
            headers={"Content-Length": str(relay.info.file_size)},
        )

    async def download(request: Request, caller: Caller) -> Response:
        run_id, path = ids.proxy_path(request.path_params["artifact_path"])
        if not path:
            raise MlflowError.invalid("artifact path: names the run's root, not a file")
        return await stream_file(caller, run_id, path)

    async def logged_model_file(request: Request, caller: Caller) -> Response:
        """MLflow UI's read of one file of a LoggedModel (``?artifact_file_path=``)."""
        model_id = request.path_params["model_id"]
        fields = await read_fields(request, max_body, body_timeout)
        fields.refuse_unknown(("artifact_file_path",))
        path = ids.file_path(fields.string("artifact_file_path", required=True), field="artifact_file_path")
        return await stream_file(caller, ids.run_of_model(model_id), f"{ids.model_files(model_id)}/{path}")

    async def listing(request: Request, caller: Caller) -> Response:
        fields = await read_fields(request, max_body, body_timeout)
        fields.refuse_unknown(("path",))
        listed = fields.string("path")
        if not listed:
            raise MlflowError.invalid("path: list a run's files (<experiment id>/<run id>/artifacts[/...])")
        run_id, path = ids.proxy_path(listed)
        entries = await call(caller, lambda: tracking.list_artifacts(run_id, path))
        start = len(path) + 1 if path else 0
        return MlflowJSONResponse({"files": [_entry(f, f.path[start:]) for f in entries]})

    async def delete(request: Request, caller: Caller) -> Response:
        ids.proxy_path(request.path_params["artifact_path"])
        raise MlflowError(
            "NOT_IMPLEMENTED",
            "artifacts cannot be deleted: modelreg keeps a run's files as logged (delete the run)",
        )

    file_route = "/artifacts/{artifact_path:path}"
    result: list[BaseRoute] = []
    for prefix in PREFIXES:
        result += [
            Route(prefix + file_route, served(upload), methods=["PUT"]),
            Route(prefix + file_route, served(download), methods=["GET"]),
            Route(prefix + file_route, served(delete), methods=["DELETE"]),
            Route(prefix + "/artifacts", served(listing), methods=["GET"]),
        ]
    logged_model_files = "/ajax-api/2.0/mlflow/logged-models/{model_id}/artifacts/files"
    result.append(Route(logged_model_files, served(logged_model_file), methods=["GET"]))
    return result


class _Slots:
    """At most ``count`` holders at once; one more is refused at once (503), never queued: a
    queued upload would hold its connection and its client's retry budget for nothing. Taken and
    given back on the event loop only, so no lock is needed."""

    def __init__(self, count: int) -> None:
        self.free = count

    @contextmanager
    def taken(self) -> Iterator[None]:
        if self.free <= 0:
            raise MlflowError(
                "TEMPORARILY_UNAVAILABLE", "too many artifact uploads in progress; try again", status=503
            )
        self.free -= 1
        try:
            yield
        finally:
            self.free += 1


def _too_large(limit: int) -> MlflowError:
    return MlflowError("RESOURCE_EXHAUSTED", f"artifact: over {limit} bytes", status=413)


def _upload_refused(error: ModelregError) -> MlflowError:
    """The answer to an upload the tracking service refused or cut: as any service error, except
    where the service was busy or waited on the body (see the module's docstring)."""
    if error.code == "RESOURCE_EXHAUSTED" and error.reason == "TOO_MANY_STREAMS":
        return MlflowError(
            "TEMPORARILY_UNAVAILABLE",
            f"the tracking service is running its limit of uploads; try again ({error.message})",
            status=503,
        )
    if error.code == "DEADLINE_EXCEEDED" and error.reason == "STREAM_IDLE":
        return MlflowError("DEADLINE_EXCEEDED", f"request body: {error.message}", status=408)
    return MlflowError.from_modelreg(error)


class _Body:
    """An upload's request body, handed to the gRPC stream's request iterator as it arrives.

    gRPC pulls the iterator (:meth:`blocks`) on a thread of its own; each pull fetches the next
    block of about RELAY_BYTES from the event loop, so the body is read only as fast as the
    stream takes it. A body over ``limit`` bytes raises 413 as soon as it passes; the body's
    own errors (408, a disconnect) are raised too, ending the stream without its end message.
    Created on the event loop."""

    def __init__(self, chunks: AsyncIterator[bytes], limit: int) -> None:
        self._chunks = chunks
        self._limit = limit
        self._size = 0
        self._loop = anyio.lowlevel.current_token()
        self._fetching: anyio.CancelScope | None = None
        self._closed = False

    def blocks(self) -> Iterator[bytes]:
        """The body's blocks (in a thread that is not the event loop's, which joins each block's
        pieces: the copy is not the event loop's time)."""
        while pieces := anyio.from_thread.run(self._next, token=self._loop):
            yield pieces[0] if len(pieces) == 1 else b"".join(pieces)

    async def _next(self) -> list[bytes]:
        """The pieces of the next block; none at the body's end."""
        if self._closed:
            raise anyio.ClosedResourceError
        pieces: list[bytes] = []
        gathered = 0
        with anyio.CancelScope() as self._fetching:
            while gathered < RELAY_BYTES and (chunk := await anext(self._chunks, None)) is not None:
                gathered += len(chunk)
                if self._size + gathered > self._limit:
                    raise _too_large(self._limit)
                pieces.append(chunk)
        self._fetching = None
        if self._closed:
            raise anyio.ClosedResourceError
        self._size += gathered
        return pieces

    def close(self) -> None:
        """Ends the relay (on the event loop): a fetch under way, or any later one, raises, so a
        stream that failed before taking the whole body leaves no thread waiting for it."""
        self._closed = True
        if self._fetching is not None:
            self._fetching.cancel()


class _Relay:
    """One file's download from the tracking service, relayed as it arrives. Every read of the
    stream (and the hashing) runs on the thread pool, under the caller's credentials."""

    def __init__(self, stream: Generator[Chunk, None, None], caller: Caller) -> None:
        self.stream = stream
        self.caller = caller
        self.info = e.FileInfo("", is_dir=False, file_size=0, sha256="")  # until start() reads it
        self.head: list[memoryview] = []
        self.ended = False
        self._digest = hashlib.sha256()
        self._size = 0

    def _next(self) -> Chunk | None:
        with wire.calling_as(*self.caller):
            return next(self.stream, None)

    def start(self) -> None:
        """Reads the description and up to PREFETCH_BYTES of the file."""
        first = self._next()
        if not isinstance(first, e.FileInfo):
            raise MlflowError("DATA_LOSS", "the tracking service sent a download without its description")
        self.info = first
        while self._size < PREFETCH_BYTES:
            chunk = self.pull()
            if chunk is None:
                self.ended = True
                return
            self.head.append(chunk)

    def pull(self) -> memoryview | None:
        message = self._next()
        if message is None:
            return None
        if isinstance(message, e.FileInfo):
            raise MlflowError("DATA_LOSS", f"{self.info.path}: a second description in one download")
        # Relayed as the view gRPC decoded (the server writes a memoryview as is): no copy.
        self._digest.update(message)
        self._size += len(message)
        return message

    def verify(self) -> None:
        if self._size != self.info.file_size or self._digest.hexdigest() != self.info.sha256:
            raise MlflowError(
                "DATA_LOSS",
                f"{self.info.path}: read {self._size} bytes with sha256 {self._digest.hexdigest()}, "
                f"the service recorded {self.info.file_size} bytes with {self.info.sha256}",
            )

    async def body(self) -> AsyncIterator[memoryview]:
        """The rest of a file too large to prefetch. The last chunk goes out only once the whole
        file checked out: failing before the body's end makes the server drop the connection, so
        the client sees a body shorter than its Content-Length, never a damaged file as whole."""
        try:
            for prefetched in self.head:
                yield prefetched
            self.head = []
            held: memoryview | None = None
            while (chunk := await run_in_threadpool(self.pull)) is not None:
                if held:
                    yield held
                held = chunk
            self.verify()
            if held:
                yield held
        finally:
            await run_in_threadpool(self.stream.close)  # a client gone early must not leave it open


def _entry(file: e.FileInfo, name: str) -> dict[str, object]:
    """MLflow's FileInfo JSON: a directory has no size."""
    if file.is_dir:
        return {"path": name, "is_dir": True}
    return {"path": name, "is_dir": False, "file_size": file.file_size}
