"""``TrackingClient``: a typed client of the tracking service (experiments, runs, metrics, artifacts).

Listing calls (``search_experiments``, ``search_runs``, ``get_metric_history``) return a
:class:`~modelreg._grpc.Pager`: an iterator that fetches pages as it goes. ``max_results`` caps
the number of items; after iterating, ``pager.token`` resumes the listing. ``modelreg.Client``
turns these into MLflow-style ``PagedList`` objects.

Artifacts move in 1 MiB chunks. Uploads are streamed (again whole from the file when a retry is
due, see ``modelreg._grpc``; bytes relayed from elsewhere, :meth:`TrackingClient.log_artifact_chunks`,
are sent once) and end by declaring the size and sha256 computed while sending (the server publishes nothing that lacks or disagrees with them);
downloads are written to a temporary file, checked against the size and sha256 in the stream's
first message, then renamed into place, so a damaged download never appears under its final name. Chunks bypass the generated message classes, and a
download's file writes run on a helper thread, overlapping receiving and hashing (see
``modelreg.wire``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import posixpath
import tempfile
import threading
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType

import grpc

from modelreg import _convert as conv
from modelreg import entities as e
from modelreg import wire as transfer
from modelreg._grpc import Pager, Rpc
from modelreg.config import ClientSettings, TlsConfig
from modelreg.exceptions import DataLoss, ModelregError, UnsafePathError
from modelreg.paths import safe_join
from modelreg.tracking.v1 import tracking_pb2 as pb
from modelreg.tracking.v1 import tracking_pb2_grpc as pb_grpc
from modelreg.wire import now_ms

CHUNK_BYTES = transfer.CHUNK_BYTES

Progress = Callable[[int, int], None]
"""Called as ``progress(bytes_done, total_bytes)`` while artifacts move."""


def _str_map(tags: Mapping[str, object] | None) -> dict[str, str]:
    return {str(k): str(v) for k, v in (tags or {}).items()}


class _ProgressCounter:
    """Cumulative progress over several files, so a directory shows as one bar."""

    def __init__(self, total: int, callback: Progress | None) -> None:
        self.total = total
        self.done = 0
        self._callback = callback

    def add(self, n: int) -> None:
        self.done += n
        if self._callback is not None:
            self._callback(self.done, self.total)


class TrackingClient:
    """Client of ``modelreg.tracking.v1.TrackingService``.

    ``target`` is ``host:port`` (``grpc://`` optional, ``grpcs://`` for TLS); it defaults to
    ``MODELREG_TRACKING_URI`` or ``localhost:50051``. ``timeout`` is the deadline of each unary
    call in seconds; ``retry_seconds`` how long a call failing UNAVAILABLE is retried (default
    ``MODELREG_RETRY_SECONDS`` or 60, see ``modelreg._grpc``). Thread-safe: one channel per
    client, shared by every thread.
    ``tls`` (a :class:`~modelreg.config.TlsConfig`) replaces the TLS files of the environment
    (``MODELREG_CA_FILE``, ``MODELREG_CLIENT_CERT_FILE``, ``MODELREG_CLIENT_KEY_FILE``) for a
    ``grpcs://`` target, e.g. so a service passes its own client certificate.
    """

    def __init__(
        self,
        target: str | None = None,
        *,
        timeout: float | None = None,
        token: str | None = None,
        tls: TlsConfig | None = None,
        retry_seconds: float | None = None,
    ) -> None:
        settings = ClientSettings.from_env()
        if retry_seconds is not None:
            settings = dataclasses.replace(settings, retry_seconds=retry_seconds)
        self.target = target or settings.tracking_uri
        service = pb.DESCRIPTOR.services_by_name["TrackingService"]
        self._rpc = Rpc.for_client(self.target, settings, timeout=timeout, token=token, tls=tls)
        self._stub = pb_grpc.TrackingServiceStub(self._rpc.channel)
        # The artifact streams carry encoded bytes, not generated messages: see modelreg.wire.
        channel = self._rpc.channel
        self._upload_artifact: grpc.StreamUnaryMultiCallable[bytes, pb.UploadArtifactResponse] = (
            channel.stream_unary(
                f"/{service.full_name}/UploadArtifact",
                request_serializer=None,
                response_deserializer=pb.UploadArtifactResponse.FromString,
            )
        )
        self._download_artifact: grpc.UnaryStreamMultiCallable[
            pb.DownloadArtifactRequest, pb.FileInfo | memoryview
        ] = channel.unary_stream(
            f"/{service.full_name}/DownloadArtifact",
            request_serializer=pb.DownloadArtifactRequest.SerializeToString,
            response_deserializer=transfer.decode_download,
        )

    def close(self) -> None:
        self._rpc.close()

    def __enter__(self) -> TrackingClient:
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.close()

    # Experiments

    def create_experiment(
        self, name: str, artifact_location: str | None = None, tags: Mapping[str, object] | None = None
    ) -> e.Experiment:
        request = pb.CreateExperimentRequest(
            name=name, artifact_location=artifact_location or "", tags=_str_map(tags)
        )
        return conv.experiment(self._rpc.unary(self._stub.CreateExperiment, request).experiment)

    def get_experiment(self, experiment_id: str) -> e.Experiment:
        request = pb.GetExperimentRequest(experiment_id=str(experiment_id))
        return conv.experiment(self._rpc.unary(self._stub.GetExperiment, request).experiment)

    def get_experiment_by_name(self, name: str) -> e.Experiment:
        """Raises NotFound (EXPERIMENT_NOT_FOUND) when no experiment has that name."""
        request = pb.GetExperimentByNameRequest(name=name)
        return conv.experiment(self._rpc.unary(self._stub.GetExperimentByName, request).experiment)

    def search_experiments(
        self,
        filter_string: str = "",
        view_type: str | int = "ACTIVE_ONLY",
        max_results: int | None = None,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> Pager[e.Experiment]:
        def fetch(token: str, size: int) -> tuple[list[e.Experiment], str]:
            request = pb.SearchExperimentsRequest(
                filter=filter_string,
                order_by=list(order_by or ()),
                page_size=size,
                page_token=token,
                view_type=conv.view_type_to_proto(view_type),
            )
            response = self._rpc.unary(self._stub.SearchExperiments, request)
            return [conv.experiment(x) for x in response.experiments], response.next_page_token

        return Pager(fetch, page_token=page_token, max_results=max_results)

    def rename_experiment(self, experiment_id: str, new_name: str) -> e.Experiment:
        request = pb.RenameExperimentRequest(experiment_id=str(experiment_id), new_name=new_name)
        return conv.experiment(self._rpc.unary(self._stub.RenameExperiment, request).experiment)

    def delete_experiment(self, experiment_id: str) -> None:
        self._rpc.unary(
            self._stub.DeleteExperiment, pb.DeleteExperimentRequest(experiment_id=str(experiment_id))
        )

    def restore_experiment(self, experiment_id: str) -> None:
        self._rpc.unary(
            self._stub.RestoreExperiment, pb.RestoreExperimentRequest(experiment_id=str(experiment_id))
        )

    def set_experiment_tag(self, experiment_id: str, key: str, value: object) -> None:
        request = pb.SetExperimentTagRequest(experiment_id=str(experiment_id), key=key, value=str(value))
        self._rpc.unary(self._stub.SetExperimentTag, request)

    def delete_experiment_tag(self, experiment_id: str, key: str) -> None:
        request = pb.DeleteExperimentTagRequest(experiment_id=str(experiment_id), key=key)
        self._rpc.unary(self._stub.DeleteExperimentTag, request)

    def set_experiment_permission(
        self, experiment_id: str, level: str, *, user: str = "", group: str = ""
    ) -> e.Permission:
        """Grants ``level`` (READ, EDIT or MANAGE) to ``user`` or ``group`` (exactly one),
        replacing an earlier grant to them. Needs MANAGE on the experiment."""
        request = pb.SetExperimentPermissionRequest(
            experiment_id=str(experiment_id),
            principal=conv.principal(user, group),
            level=conv.permission_level(level),
        )
        return conv.permission(self._rpc.unary(self._stub.SetExperimentPermission, request).permission)

    def delete_experiment_permission(self, experiment_id: str, *, user: str = "", group: str = "") -> None:
        """Removes the grant to ``user`` or ``group``; NotFound (PERMISSION_NOT_FOUND) without one."""
        request = pb.DeleteExperimentPermissionRequest(
            experiment_id=str(experiment_id), principal=conv.principal(user, group)
        )
        self._rpc.unary(self._stub.DeleteExperimentPermission, request)

    def list_experiment_permissions(
        self, experiment_id: str
    ) -> tuple[list[e.Permission], list[e.PermissionEvent]]:
        """The grants (users, then groups, by name) and their history (oldest first, the latest 1,000)."""
        request = pb.ListExperimentPermissionsRequest(experiment_id=str(experiment_id))
        response = self._rpc.unary(self._stub.ListExperimentPermissions, request)
        return [conv.permission(p) for p in response.permissions], [
            conv.permission_event(v) for v in response.events
        ]

    # Runs

    def create_run(
        self,
        experiment_id: str = "0",
        run_name: str | None = None,
        start_time: int | None = None,
        tags: Mapping[str, object] | None = None,
        parent_run_id: str | None = None,
    ) -> e.Run:
        request = pb.CreateRunRequest(
            experiment_id=str(experiment_id),
            run_name=run_name or "",
            start_time=start_time or 0,
            tags=_str_map(tags),
            parent_run_id=parent_run_id or "",
        )
        return conv.run(self._rpc.unary(self._stub.CreateRun, request).run)

    def get_run(self, run_id: str) -> e.Run:
        """The run with its params, latest metrics and tags. Raises NotFound (RUN_NOT_FOUND)."""
        return conv.run(self._rpc.unary(self._stub.GetRun, pb.GetRunRequest(run_id=run_id)).run)

    def update_run(
        self, run_id: str, status: str | None = None, end_time: int | None = None, run_name: str | None = None
    ) -> e.RunInfo:
        """Changes only the fields given; ``status`` is a name such as ``"FINISHED"``."""
        request = pb.UpdateRunRequest(run_id=run_id)
        if status is not None:
            request.status = conv.run_status_to_proto(status)
        if end_time is not None:
            request.end_time = end_time
        if run_name is not None:
            request.run_name = run_name
        return conv.run_info(self._rpc.unary(self._stub.UpdateRun, request).run_info)

    def set_terminated(self, run_id: str, status: str = "FINISHED", end_time: int | None = None) -> e.RunInfo:
        return self.update_run(run_id, status=status, end_time=end_time if end_time is not None else now_ms())

    def delete_run(self, run_id: str) -> None:
        self._rpc.unary(self._stub.DeleteRun, pb.DeleteRunRequest(run_id=run_id))

    def restore_run(self, run_id: str) -> None:
        self._rpc.unary(self._stub.RestoreRun, pb.RestoreRunRequest(run_id=run_id))

    def list_run_events(
        self,
        experiment_ids: Sequence[str] | str | None = None,
        *,
        run_id: str = "",
        actions: Sequence[str] = (),
        cursor: str = "",
        max_results: int = 0,
    ) -> e.RunEvents:
        """Run lifecycle events after ``cursor`` (from the beginning when empty), oldest first, at
        most ``max_results`` (0: the server's default, 100; at most 1,000). Ask again with
        ``next_cursor`` to follow the log: nothing is missed or seen twice."""
        ids = [experiment_ids] if isinstance(experiment_ids, str) else [str(i) for i in experiment_ids or ()]
        response = self._rpc.unary(
            self._stub.ListRunEvents,
            pb.ListRunEventsRequest(
                experiment_ids=ids,
                run_id=run_id,
                actions=[conv.run_event_action_to_proto(action) for action in actions],
                cursor=cursor,
                page_size=max_results,
            ),
        )
        return e.RunEvents(tuple(map(conv.run_event, response.events)), response.next_cursor)

    def search_runs(
        self,
        experiment_ids: Sequence[str] | str | None = None,
        filter_string: str = "",
        run_view_type: str | int = "ACTIVE_ONLY",
        max_results: int | None = None,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> Pager[e.Run]:
        """Runs matching MLflow's filter grammar; every experiment when ``experiment_ids`` is empty.

        Default order: start_time DESC, run_id ASC.
        """
        ids = [experiment_ids] if isinstance(experiment_ids, str) else [str(i) for i in experiment_ids or ()]

        def fetch(token: str, size: int) -> tuple[list[e.Run], str]:
            request = pb.SearchRunsRequest(
                experiment_ids=ids,
                filter=filter_string,
                run_view_type=conv.view_type_to_proto(run_view_type),
                page_size=size,
                order_by=list(order_by or ()),
                page_token=token,
            )
            response = self._rpc.unary(self._stub.SearchRuns, request)
            return [conv.run(r) for r in response.runs], response.next_page_token

        return Pager(fetch, page_token=page_token, max_results=max_results)

    # Params, metrics, tags

    def log_param(self, run_id: str, key: str, value: object) -> None:
        """Params are immutable: another value for a logged key raises InvalidArgument (PARAM_VALUE_CONFLICT)."""
        request = pb.LogParamRequest(run_id=run_id, param=pb.Param(key=key, value=str(value)))
        self._rpc.unary(self._stub.LogParam, request)

    def log_metric(
        self, run_id: str, key: str, value: float, timestamp: int | None = None, step: int | None = None
    ) -> None:
        metric = pb.Metric(key=key, value=float(value), timestamp=timestamp or now_ms(), step=step or 0)
        self._rpc.unary(self._stub.LogMetric, pb.LogMetricRequest(run_id=run_id, metric=metric))

    def set_tag(self, run_id: str, key: str, value: object) -> None:
        self._rpc.unary(self._stub.SetTag, pb.SetTagRequest(run_id=run_id, key=key, value=str(value)))

    def delete_tag(self, run_id: str, key: str) -> None:
        self._rpc.unary(self._stub.DeleteTag, pb.DeleteTagRequest(run_id=run_id, key=key))

    def log_batch(
        self,
        run_id: str,
        metrics: Sequence[e.Metric] = (),
        params: Sequence[e.Param] = (),
        tags: Sequence[e.RunTag] = (),
    ) -> None:
        """Stores up to 1,000 metrics, 100 params and 100 tags atomically (all or none)."""
        request = pb.LogBatchRequest(
            run_id=run_id,
            params=[pb.Param(key=p.key, value=str(p.value)) for p in params],
            tags={t.key: str(t.value) for t in tags},
        )
        add = request.metrics.add
        for m in metrics:
            add(key=m.key, value=m.value, timestamp=m.timestamp, step=m.step)
        self._rpc.unary(self._stub.LogBatch, request)

    def log_metrics_stream(self, batches: Iterable[tuple[str, Sequence[e.Metric]]]) -> int:
        """Sends ``(run_id, points)`` batches (each 1..10,000 points) over one LogMetrics stream.

        Each batch is stored atomically; returns the number of points stored. A stream broken by
        UNAVAILABLE is sent again from its first batch (kept in memory until the call returns);
        the server stores each batch of the stream once, so no point is stored twice. On a failure
        that is not retried, the batches stored before it stay stored.
        """
        source = (conv.metrics_request(run_id, points) for run_id, points in batches if points)
        sent: list[pb.LogMetricsRequest] = []
        lock = threading.Lock()

        def requests() -> Iterator[pb.LogMetricsRequest]:
            # A retry sends again what was sent (the stream's idempotency key makes the server skip
            # the messages it stored), then goes on with the batches not yet sent.
            yield from sent[: len(sent)]
            while True:
                with lock:  # a failed attempt's gRPC thread may still be pulling
                    request = next(source, None)
                    if request is None:
                        return
                    sent.append(request)
                yield request

        return self._rpc.stream_unary(self._stub.LogMetrics, requests, write=True).stored_count

    def get_metric_history(
        self, run_id: str, key: str, max_results: int | None = None, page_token: str | None = None
    ) -> Pager[e.Metric]:
        """Every point of one metric, ordered by (step, timestamp), from ``page_token`` (a
        listing's ``pager.token``) when given."""

        def fetch(token: str, size: int) -> tuple[list[e.Metric], str]:
            request = pb.GetMetricHistoryRequest(
                run_id=run_id, metric_key=key, page_size=size, page_token=token
            )
            response = self._rpc.unary(self._stub.GetMetricHistory, request)
            return [conv.metric(m) for m in response.metrics], response.next_page_token

        return Pager(fetch, page_token=page_token, max_results=max_results)

    # Artifacts

    def list_artifacts(self, run_id: str, path: str = "", recursive: bool = False) -> list[e.FileInfo]:
        """Entries under ``path`` (the root when empty), sorted by path; files only when recursive."""
        request = pb.ListArtifactsRequest(run_id=run_id, path=path or "", recursive=recursive)
        return [conv.file_info(f) for f in self._rpc.unary(self._stub.ListArtifacts, request).files]

    def stat_artifact(self, run_id: str, path: str) -> e.FileInfo:
        """Raises NotFound (RUN_NOT_FOUND or ARTIFACT_NOT_FOUND)."""
        request = pb.StatArtifactRequest(run_id=run_id, path=path)
        return conv.file_info(self._rpc.unary(self._stub.StatArtifact, request).file)

    def seal_artifacts(self, run_id: str, path: str) -> list[e.FileInfo]:
        """Freezes the file or directory at ``path`` of the run against later uploads and returns
        the files it holds (paths relative to the run's root). The registry does this when it
        registers a version; a seal is never lifted. Raises NotFound (RUN_NOT_FOUND,
        ARTIFACT_NOT_FOUND), FailedPrecondition (RUN_DELETED)."""
        request = pb.SealArtifactsRequest(run_id=run_id, path=path)
        return [conv.file_info(f) for f in self._rpc.unary(self._stub.SealArtifacts, request).files]

    def log_artifact(
        self,
        run_id: str,
        local_path: str | os.PathLike[str],
        artifact_path: str | None = None,
        *,
        expected_sha256: str | None = None,
        progress: Progress | None = None,
    ) -> e.FileInfo:
        """Uploads one file as ``<artifact_path>/<file name>``; returns what the server stored.

        With ``expected_sha256`` the server itself refuses a mismatch and publishes nothing. A
        file that changes while it is read (written to, truncated or replaced) is not sent as
        complete: the server publishes nothing and this raises DataLoss (FILE_CHANGED). The
        digest the server computed is compared with the one read here (DIGEST_MISMATCH).
        """
        local = Path(local_path)
        dest = posixpath.join(artifact_path, local.name) if artifact_path else local.name
        counter = _ProgressCounter(local.stat().st_size, progress)
        return self._upload(run_id, local, dest, expected_sha256, counter)

    def log_artifacts(
        self,
        run_id: str,
        local_dir: str | os.PathLike[str],
        artifact_path: str | None = None,
        *,
        progress: Progress | None = None,
    ) -> list[e.FileInfo]:
        """Uploads every file below ``local_dir`` under ``artifact_path``, keeping the layout."""
        root = Path(local_dir)
        if not root.is_dir():
            raise NotADirectoryError(f"not a directory: {root}")
        files = sorted(p for p in root.rglob("*") if p.is_file())
        counter = _ProgressCounter(sum(p.stat().st_size for p in files), progress)
        stored = []
        for path in files:
            rel = path.relative_to(root).as_posix()
            dest = posixpath.join(artifact_path, rel) if artifact_path else rel
            stored.append(self._upload(run_id, path, dest, None, counter))
        return stored

    def log_artifact_chunks(
        self,
        run_id: str,
        artifact_file: str,
        chunks: Iterable[bytes],
        *,
        expected_sha256: str | None = None,
    ) -> e.FileInfo:
        """Uploads the bytes of ``chunks`` (any sizes) as the file ``artifact_file`` of the run,
        sent as they come; returns what the server stored. For bytes relayed from elsewhere (the
        MLflow endpoint relays request bodies with it) that are never whole in memory or on disk.

        Not retried: ``chunks`` is consumed once, so a stream that breaks (UNAVAILABLE) or is
        refused (RESOURCE_EXHAUSTED TOO_MANY_STREAMS) raises, and the caller sends the bytes again.
        The stream ends by declaring the size and sha256 of the bytes sent, and with
        ``expected_sha256`` the server also refuses other bytes; either way it publishes nothing
        that disagrees. An exception raised by ``chunks`` ends the stream without that end (the
        server publishes nothing) and is raised here.
        """
        return self._send(run_id, artifact_file, expected_sha256, lambda: chunks, once=True)

    def _upload(
        self, run_id: str, local: Path, dest: str, expected_sha256: str | None, counter: _ProgressCounter
    ) -> e.FileInfo:
        start = counter.done

        def read() -> Iterator[bytes]:
            # Each attempt (a retry sends the file again whole) reads it afresh.
            counter.done = start
            with local.open("rb") as f:
                before = _identity(os.fstat(f.fileno()))
                while chunk := f.read(CHUNK_BYTES):
                    yield chunk
                    counter.add(len(chunk))
                # The bytes hashed are the bytes sent, so only the file's own record can show that
                # it was written to (or replaced) while being read: a mix of two versions.
                if _identity(os.fstat(f.fileno())) != before or _identity(local.stat()) != before:
                    raise DataLoss(
                        f"{local} changed while it was uploaded to {dest}; nothing was stored",
                        code="DATA_LOSS",
                        reason="FILE_CHANGED",
                        metadata={"path": dest},
                    )

        return self._send(run_id, dest, expected_sha256, read, once=False)

    def _send(
        self,
        run_id: str,
        dest: str,
        expected_sha256: str | None,
        chunks: Callable[[], Iterable[bytes]],
        *,
        once: bool,
    ) -> e.FileInfo:
        """One upload: the metadata, the bytes of ``chunks()`` (called again for each attempt
        the retry loop makes, unless ``once``) hashed as they are sent, then the end declaring
        their size and sha256. An exception raised by the chunks ends the stream without its end,
        so the server publishes nothing, and is raised instead of the server's refusal."""
        digest = hashlib.sha256()
        failure: Exception | None = None

        def requests() -> Iterator[bytes]:
            nonlocal digest, failure
            digest, failure = hashlib.sha256(), None
            metadata = pb.UploadArtifactMetadata(
                run_id=run_id, path=dest, expected_sha256=expected_sha256 or ""
            )
            yield transfer.encode_metadata(metadata)
            size = 0
            try:
                for message, length in transfer.chunk_messages(chunks(), digest):
                    yield message
                    size += length
            except Exception as error:  # raised to the caller once the stream has ended
                failure = error
                return  # without the end message: the server publishes nothing
            # Only a stream that reached here says it is complete: an interrupted one ends without
            # this and the server publishes nothing.
            yield transfer.encode_end(size, digest.hexdigest())

        try:
            response = self._rpc.stream_unary(self._upload_artifact, requests, once=once)
        except ModelregError:
            if failure is not None:
                raise failure from None
            raise
        if failure is not None:  # the server refuses a stream without its end; never trust it did
            raise failure
        stored = conv.file_info(response.file)
        if stored.sha256 != digest.hexdigest():
            raise DataLoss(
                f"{dest}: the server stored sha256 {stored.sha256}, the bytes sent were {digest.hexdigest()}",
                code="DATA_LOSS",
                reason="DIGEST_MISMATCH",
                metadata={"path": dest},
            )
        return stored

    def download_artifacts(
        self,
        run_id: str,
        path: str = "",
        dst_path: str | os.PathLike[str] | None = None,
        *,
        progress: Progress | None = None,
    ) -> str:
        """Downloads a file or a directory (the whole root when ``path`` is empty) into ``dst_path``
        (a new temporary directory when None), and returns the local path of what was downloaded.

        Every file is verified against the size and sha256 the server recorded; a mismatch raises
        DataLoss (DIGEST_MISMATCH) and leaves no file under the final name. A listed path that is not
        below ``path`` or would land outside ``dst_path`` (see :func:`modelreg.paths.safe_join`)
        raises UnsafePathError before anything is written.
        """
        dst = Path(dst_path) if dst_path is not None else Path(tempfile.mkdtemp(prefix="modelreg-"))
        path = path.strip("/")
        stat = self.stat_artifact(run_id, path) if path else None  # the root is always a directory
        is_dir = stat is None or stat.is_dir
        files = self.list_artifacts(run_id, path, recursive=True) if stat is None or stat.is_dir else [stat]
        counter = _ProgressCounter(sum(f.file_size for f in files), progress)
        # Paths come from the server: each must name something below what was asked for and stay
        # inside dst. All are checked before the first byte is written.
        planned = [(f.path, self._local_path(dst, path, f.path)) for f in files]
        for remote, local in planned:
            self._download_file(run_id, remote, local, counter)
        target = safe_join(dst, path) if path else dst
        if is_dir:  # an empty directory still exists locally after its download
            target.mkdir(parents=True, exist_ok=True)
        return str(target)

    @staticmethod
    def _local_path(dst: Path, requested: str, listed: str) -> Path:
        """Where the listed artifact goes: ``dst / listed``, refused unless ``listed`` is
        ``requested`` or below it and stays inside ``dst``."""
        if requested and listed != requested and not listed.startswith(requested + "/"):
            raise UnsafePathError(listed, f"is not below the requested path {requested!r}")
        return safe_join(dst, listed)

    def artifact_stream(self, run_id: str, path: str) -> Generator[e.FileInfo | memoryview, None, None]:
        """One file's download as it arrives: its FileInfo (size, sha256), then its chunks
        (unverified: the caller checks them against the FileInfo). A service relaying a file uses it."""
        request = pb.DownloadArtifactRequest(run_id=run_id, path=path)
        for message in self._rpc.unary_stream(self._download_artifact, request):
            yield message if isinstance(message, memoryview) else conv.file_info(message)

    def _download_file(self, run_id: str, path: str, local: Path, counter: _ProgressCounter) -> None:
        local.parent.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        size = 0
        expected: e.FileInfo | None = None
        request = pb.DownloadArtifactRequest(run_id=run_id, path=path)
        fd, tmp_name = tempfile.mkstemp(dir=local.parent, prefix=f".{local.name}.", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as out, transfer.ChunkWriter(out) as writer:
                for message in self._rpc.unary_stream(self._download_artifact, request):
                    if not isinstance(message, memoryview):
                        expected = conv.file_info(message)
                        continue
                    writer.write(message)  # on the writer thread, while this one hashes
                    digest.update(message)
                    size += len(message)
                    counter.add(len(message))
            if expected is None or expected.sha256 != digest.hexdigest() or expected.file_size != size:
                raise DataLoss(
                    f"{path}: received {size} bytes with sha256 {digest.hexdigest()}, expected {expected}",
                    code="DATA_LOSS",
                    reason="DIGEST_MISMATCH",
                    metadata={"path": path},
                )
            os.replace(tmp_name, local)
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
            raise


def _identity(stat: os.stat_result) -> tuple[int, int, int, int, int]:
    """What changes when a file is written to, truncated or replaced."""
    return (stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns)
