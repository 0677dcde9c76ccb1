"""The real LineagePort: asks the tracking service about a run through the modelreg client.

Per registration it makes two calls: GetRun and SealArtifacts. Sealing freezes the source's file
or directory in tracking (later uploads there are refused, FAILED_PRECONDITION ARTIFACT_SEALED)
and answers the files it holds in the same transaction, so the digests recorded with the version
are exactly the bytes that can never change afterwards: a version's files cannot be rewritten
after registration. A seal made for a registration that then fails (a name taken, the model
deleted meanwhile) stays; it only keeps files as they are. For a ``runs:/<run_id>/<path>``
source the path is known up front, so both calls start at once; for a source under the run's
artifact URI the path needs the run, so sealing starts when GetRun has answered. Answers are read
in a fixed order whatever order they arrive in, so the errors keep their precedence:
RUN_NOT_FOUND / RUN_DELETED, then INVALID_SOURCE, then ARTIFACT_NOT_FOUND.

Deadline: at most two steps run one after the other, so each call gets half of
MODELREG_TRACKING_TIMEOUT_SECONDS as its deadline (the client's retry policy, UNAVAILABLE with
backoff, runs inside it; sealing is idempotent), and waiting for the background call is bounded
by the whole check's deadline too: the check ends within the configured timeout. The request id
of the registry call travels to tracking from every thread (each call runs in a copy of the
caller's context), so both logs show one id.

Identity: with access control on, the registry calls tracking with its own service token
(modelreg_server.access.service_identity) and a check names the end user it runs for
(``x-modelreg-on-behalf-of``): tracking authorizes the check as that user, so registering needs
READ on the run's experiment (a service may seal on a user's behalf, as it may read;
tracking asks EDIT of anyone sealing directly). A model
file download (:meth:`TrackingLineage.open_file`) names nobody: the registry reads it as itself,
the caller's READ on the model having been checked.

Failures: an answer about the run (not found, deleted, no such artifact) or the caller's rights
is answered as such; tracking's RESOURCE_EXHAUSTED TOO_MANY_STREAMS (a download while it runs its
limit of streams) as the registry's own, so clients try again later; any other failure of the
tracking service, whatever its status, as UNAVAILABLE TRACKING_UNAVAILABLE, never INTERNAL.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import logging
import threading
import time
from collections.abc import Callable, Generator, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Protocol, TypeVar

import grpc

from modelreg import exceptions, wire
from modelreg.config import TlsConfig
from modelreg.entities import FileInfo, Run
from modelreg.tracking_client import TrackingClient
from modelreg_server.context import CallContext
from modelreg_server.errors import InvalidArgumentError, PermissionDeniedError, ServiceError
from registry_service import lineage_codec
from registry_service.domain import errors
from registry_service.domain.entities import EncodedLineage, FileDigest, LineageRecord, ModelFile

T = TypeVar("T")
_log = logging.getLogger(__name__)
_SEQUENTIAL_STEPS = 2  # GetRun, then SealArtifacts
# Sealing runs on the pool while the caller's thread runs GetRun.
_POOL_CALLS_PER_CHECK = 1
# Tracking's answer when it runs its limit of streams: the registry answers it as it answers its
# own (RESOURCE_EXHAUSTED, the same reason), so a client tries again later.
_STREAMS_BUSY = (grpc.StatusCode.RESOURCE_EXHAUSTED.name, "TOO_MANY_STREAMS")


def artifact_path(source: str, run_id: str, artifact_uri: str) -> str:
    """The path under the run's artifact root that ``source`` names; INVALID_SOURCE otherwise.

    Accepted: ``runs:/<run_id>/<path>`` and ``<artifact_uri>/<path>``, where the path is relative,
    non-empty and has no '.', '..' or empty segments (it cannot leave the run's root).
    """
    root = artifact_uri.rstrip("/") + "/"
    if source.startswith("runs:/"):
        source_run, _, path = source.removeprefix("runs:/").partition("/")
        if source_run != run_id:
            raise errors.InvalidSource(f"source names run '{source_run}', not run '{run_id}'", "source")
    elif artifact_uri and source.startswith(root):
        path = source.removeprefix(root)
    else:
        # The run's artifact_uri is the server's directory or bucket: GetRun shows it to readers,
        # but an error message travels further (logs, tickets), so it names the field instead.
        raise errors.InvalidSource(
            f"source must be runs:/{run_id}/<path> or lie under the artifact_uri of run '{run_id}'",
            "source",
        )
    segments = path.strip("/").split("/")
    if any(segment in ("", ".", "..") for segment in segments):
        raise errors.InvalidSource(f"source path '{path}' must be a relative path inside the run", "source")
    return "/".join(segments)


def _early_path(source: str, run_id: str) -> str | None:
    """The artifact path of a valid ``runs:/`` source, known before the run is; None otherwise
    (an invalid source is reported after the run checks, which take precedence)."""
    if not source.startswith("runs:/"):
        return None
    try:
        return artifact_path(source, run_id, "")
    except InvalidArgumentError:
        return None


def _digests(path: str, sealed: list[FileInfo]) -> tuple[FileDigest, ...]:
    """The sealed files by their path in the model: a single file by its name, a directory's
    files relative to it."""
    if len(sealed) == 1 and sealed[0].path == path:
        return (FileDigest(path.rsplit("/", 1)[-1], sealed[0].file_size, sealed[0].sha256),)
    prefix = path + "/"
    return tuple(FileDigest(f.path.removeprefix(prefix), f.file_size, f.sha256) for f in sealed)


class TrackingReads(Protocol):
    """The calls of TrackingClient a lineage check makes (a test double stands in for it)."""

    def get_run(self, run_id: str) -> Run: ...
    def seal_artifacts(self, run_id: str, path: str) -> list[FileInfo]: ...
    def artifact_stream(self, run_id: str, path: str) -> Generator[FileInfo | memoryview, None, None]: ...
    def close(self) -> None: ...


class _IdentifiedClient:
    """TrackingReads over a TrackingClient carrying the current token of ``identity``: when the
    token is re-minted, the next call opens a client with the new one. The client it replaces
    is closed one re-minting later (days), when no call can still be using it."""

    def __init__(self, connect: Callable[[str], TrackingClient], identity: Callable[[], str]) -> None:
        self._connect = connect
        self._identity = identity
        self._lock = threading.Lock()
        self._token = identity()
        self._client = connect(self._token)
        self._retired: TrackingClient | None = None

    def _current(self) -> TrackingClient:
        token = self._identity()
        if token != self._token:
            with self._lock:
                if token != self._token:
                    if self._retired is not None:
                        self._retired.close()
                    self._retired, self._client, self._token = self._client, self._connect(token), token
        return self._client

    def get_run(self, run_id: str) -> Run:
        return self._current().get_run(run_id)

    def seal_artifacts(self, run_id: str, path: str) -> list[FileInfo]:
        return self._current().seal_artifacts(run_id, path)

    def artifact_stream(self, run_id: str, path: str) -> Generator[FileInfo | memoryview, None, None]:
        return self._current().artifact_stream(run_id, path)

    def close(self) -> None:
        for client in (self._client, self._retired):
            if client is not None:
                client.close()


class TrackingLineage:
    """LineagePort over gRPC; thread-safe (one channel and one small thread pool, shared by the
    server's workers). ``max_checks`` is how many checks may run at once (the server's workers):
    the pool is sized so that no check's calls queue behind another's. ``timeout`` bounds a
    whole check."""

    def __init__(self, client: TrackingReads, timeout: float, max_checks: int = 16) -> None:
        self._timeout = timeout
        self._client = client
        self._pool = ThreadPoolExecutor(_POOL_CALLS_PER_CHECK * max_checks, thread_name_prefix="lineage")

    @classmethod
    def connect(
        cls,
        target: str,
        timeout: float,
        max_checks: int = 16,
        tls: TlsConfig | None = None,
        identity: Callable[[], str] | None = None,
    ) -> TrackingLineage:
        """A check against the tracking service at ``target``; each call gets its share of
        ``timeout``. ``tls``: the files of a ``grpcs://`` target (None: none, the system roots).
        ``identity`` returns the registry's current token (access control on)."""

        def connect(token: str) -> TrackingClient:
            # Retried within the call's share too: the registry's caller retries the whole call.
            share = timeout / _SEQUENTIAL_STEPS
            return TrackingClient(
                target, timeout=share, token=token, tls=tls or TlsConfig(), retry_seconds=share / 2
            )

        client: TrackingReads = connect("") if identity is None else _IdentifiedClient(connect, identity)
        return cls(client, timeout, max_checks)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._client.close()

    def fetch(self, ctx: CallContext, run_id: str, source: str) -> EncodedLineage:
        principal = ctx.principal
        end_user = (
            wire.encode_end_user(principal.name, principal.groups, principal.admin) if principal else None
        )
        try:
            with wire.forwarding_request_id(ctx.request_id), wire.forwarding_end_user(end_user):
                return lineage_codec.encode(self._fetch(run_id, source, time.monotonic() + self._timeout))
        except TimeoutError as exc:  # a background call still running at the check's deadline
            raise errors.TrackingUnavailable(f"no answer within {self._timeout}s") from exc
        except exceptions.PermissionDenied as exc:  # the caller may not read the run
            raise PermissionDeniedError(exc.reason, exc.message, exc.metadata) from exc
        except exceptions.ModelregError as exc:  # any other failure of the tracking service
            raise _tracking_failure(exc) from exc

    def decode(self, lineage: EncodedLineage) -> LineageRecord:
        return lineage_codec.decode(lineage)

    def open_file(self, ctx: CallContext, lineage: EncodedLineage, path: str) -> ModelFile | None:
        record = lineage_codec.decode(lineage)
        digest = next((f for f in record.files if f.path == path), None)
        if digest is None:
            return None
        # A version registered from a single file records it by its name: the source is the file.
        # (A directory holding one file of its own name looks the same: then the file is below it.)
        single = record.files == (digest,) and record.artifact_path.rsplit("/", 1)[-1] == path
        candidates = [record.artifact_path] if single else []
        candidates.append(f"{record.artifact_path}/{path}")
        for artifact in candidates:
            # The call starts here, inside the block: its metadata (this request id, no end user)
            # is fixed when it starts, and a missing artifact fails before anything is answered.
            try:
                with wire.forwarding_request_id(ctx.request_id), _stream_errors(record.run_id, artifact):
                    stream = self._client.artifact_stream(record.run_id, artifact)
                    current = next(stream, None)  # tracking's FileInfo of what the run holds now
                break
            except errors.SourceArtifactNotFound:
                if artifact == candidates[-1]:
                    raise
        # A file rewritten after registration is refused before a byte goes out: the registry
        # never labels other bytes with the registered digest.
        if not isinstance(current, FileInfo) or current.sha256 != digest.sha256:
            stream.close()
            now = current.sha256 if isinstance(current, FileInfo) else "unknown"
            raise errors.ModelFileChanged(path, digest.sha256, now)
        return ModelFile(digest, _chunks(stream, record.run_id, artifact, digest))

    def _submit(self, call: Callable[[], T]) -> Future[T]:
        return self._pool.submit(contextvars.copy_context().run, call)

    def _seal(self, run_id: str, path: str) -> Future[list[FileInfo]]:
        return self._submit(lambda: self._client.seal_artifacts(run_id, path))

    def _run(self, run_id: str) -> Run:
        try:
            run = self._client.get_run(run_id)
        except (exceptions.NotFound, exceptions.InvalidArgument) as exc:  # a malformed id names no run
            raise errors.RunNotFound(run_id) from exc
        if run.info.lifecycle_stage == "deleted":
            raise errors.RunDeleted(run_id)
        return run

    def _fetch(self, run_id: str, source: str, deadline: float) -> LineageRecord:
        early_path = _early_path(source, run_id)
        pending = self._seal(run_id, early_path) if early_path is not None else None
        run = self._run(run_id)
        path = artifact_path(source, run_id, run.info.artifact_uri)
        seal_call = pending or self._seal(run_id, path)
        try:
            sealed = seal_call.result(timeout=max(0.0, deadline - time.monotonic()))
        except exceptions.NotFound as exc:
            raise errors.SourceArtifactNotFound(run_id, path) from exc
        except exceptions.InvalidArgument as exc:
            raise errors.InvalidSource(f"'{path}' is not a valid artifact path", "source") from exc
        except exceptions.FailedPrecondition as exc:  # deleted between GetRun and the seal
            raise errors.RunDeleted(run_id) from exc
        return LineageRecord(
            run_id=run_id,
            experiment_id=run.info.experiment_id,
            run_name=run.info.run_name,
            artifact_path=path,
            params=dict(run.data.params),
            metrics=dict(run.data.metrics),
            run_tags=dict(run.data.tags),
            files=_digests(path, sealed),
        )


@contextlib.contextmanager
def _stream_errors(run_id: str, path: str) -> Iterator[None]:
    try:
        yield
    except exceptions.NotFound as exc:
        raise errors.SourceArtifactNotFound(run_id, path) from exc
    except exceptions.ModelregError as exc:
        raise _tracking_failure(exc) from exc


def _tracking_failure(exc: exceptions.ModelregError) -> ServiceError:
    """The registry's error for a failure of the tracking service, as opposed to an answer about
    the run: RESOURCE_EXHAUSTED (TOO_MANY_STREAMS) while tracking runs its limit of streams,
    UNAVAILABLE (TRACKING_UNAVAILABLE) for anything else. The caller learns the status code;
    gRPC's text may name the tracking service's address, which is the deployment's to know, so
    it goes to the log."""
    if (exc.code, exc.reason) == _STREAMS_BUSY:
        return errors.TrackingBusy(exc.metadata.get("limit", ""))
    _log.warning("the tracking service did not answer: %s %s %s", exc.code, exc.reason, exc.message)
    return errors.TrackingUnavailable(exc.code)


def _chunks(
    stream: Generator[FileInfo | memoryview, None, None], run_id: str, path: str, registered: FileDigest
) -> Generator[bytes, None, None]:
    """The file's bytes, hashed on the way: tracking's manifest vouched for them before the first
    one, but only the bytes themselves can show the stored object was not replaced behind it,
    so a stream whose bytes differ ends with DATA_LOSS instead of OK. Closing it (a reader that
    stops early) closes the download, which cancels the call to the tracking service."""
    digest = hashlib.sha256()
    try:
        with _stream_errors(run_id, path):
            for message in stream:
                if isinstance(message, memoryview):
                    digest.update(message)
                    yield bytes(message)
    finally:
        stream.close()
    if digest.hexdigest() != registered.sha256:
        raise errors.ModelFileChanged(registered.path, registered.sha256, digest.hexdigest())
