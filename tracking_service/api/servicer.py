"""TrackingService over gRPC: protos in, TrackingService (the domain) calls, protos out.

The artifact streams' framing lives here too (add_to_server, download_frames). Errors are not
handled here: the domain raises ServiceError and the server interceptor maps it to a status with
one ErrorInfo.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

import grpc

from modelreg import wire as transfer
from modelreg.tracking.v1 import tracking_pb2 as pb
from modelreg.tracking.v1 import tracking_pb2_grpc as pb_grpc
from modelreg_server.access.servicer import permission_event_pb, permission_pb
from modelreg_server.context import call_context
from modelreg_server.errors import InvalidArgumentError
from modelreg_server.event_log import encode_cursor
from tracking_service.api import converters as conv
from tracking_service.domain.service import TrackingService

SERVICE_NAME = "modelreg.tracking.v1.TrackingService"

ByteCounter = Callable[[str, int], None]
"""Called with ("in" | "out", byte count) as artifact chunks move: the metrics hook."""


def _uncounted(_direction: str, _count: int) -> None:
    pass


class TrackingServicer(pb_grpc.TrackingServiceServicer):
    def __init__(self, service: TrackingService, count_bytes: ByteCounter = _uncounted) -> None:
        self._service = service
        self._count_bytes = count_bytes

    # ---------------------------------------------------------------- experiments

    def CreateExperiment(
        self, request: pb.CreateExperimentRequest, context: grpc.ServicerContext
    ) -> pb.CreateExperimentResponse:
        experiment = self._service.create_experiment(
            call_context(), request.name, request.artifact_location, request.tags
        )
        return pb.CreateExperimentResponse(experiment=conv.experiment_to_proto(experiment))

    def GetExperiment(
        self, request: pb.GetExperimentRequest, context: grpc.ServicerContext
    ) -> pb.GetExperimentResponse:
        experiment = self._service.get_experiment(call_context(), request.experiment_id)
        return pb.GetExperimentResponse(experiment=conv.experiment_to_proto(experiment))

    def GetExperimentByName(
        self, request: pb.GetExperimentByNameRequest, context: grpc.ServicerContext
    ) -> pb.GetExperimentByNameResponse:
        experiment = self._service.get_experiment_by_name(call_context(), request.name)
        return pb.GetExperimentByNameResponse(experiment=conv.experiment_to_proto(experiment))

    def SearchExperiments(
        self, request: pb.SearchExperimentsRequest, context: grpc.ServicerContext
    ) -> pb.SearchExperimentsResponse:
        page = self._service.search_experiments(
            call_context(),
            request.filter,
            list(request.order_by),
            conv.view_type(request.view_type, "view_type"),
            request.page_size,
            request.page_token,
        )
        return pb.SearchExperimentsResponse(
            experiments=[conv.experiment_to_proto(e) for e in page.items],
            next_page_token=page.next_page_token,
        )

    def RenameExperiment(
        self, request: pb.RenameExperimentRequest, context: grpc.ServicerContext
    ) -> pb.RenameExperimentResponse:
        experiment = self._service.rename_experiment(call_context(), request.experiment_id, request.new_name)
        return pb.RenameExperimentResponse(experiment=conv.experiment_to_proto(experiment))

    def SetExperimentTag(
        self, request: pb.SetExperimentTagRequest, context: grpc.ServicerContext
    ) -> pb.SetExperimentTagResponse:
        self._service.set_experiment_tag(call_context(), request.experiment_id, request.key, request.value)
        return pb.SetExperimentTagResponse()

    def DeleteExperimentTag(
        self, request: pb.DeleteExperimentTagRequest, context: grpc.ServicerContext
    ) -> pb.DeleteExperimentTagResponse:
        self._service.delete_experiment_tag(call_context(), request.experiment_id, request.key)
        return pb.DeleteExperimentTagResponse()

    def DeleteExperiment(
        self, request: pb.DeleteExperimentRequest, context: grpc.ServicerContext
    ) -> pb.DeleteExperimentResponse:
        self._service.delete_experiment(call_context(), request.experiment_id)
        return pb.DeleteExperimentResponse()

    def RestoreExperiment(
        self, request: pb.RestoreExperimentRequest, context: grpc.ServicerContext
    ) -> pb.RestoreExperimentResponse:
        self._service.restore_experiment(call_context(), request.experiment_id)
        return pb.RestoreExperimentResponse()

    # ---------------------------------------------------------------- runs

    def CreateRun(self, request: pb.CreateRunRequest, context: grpc.ServicerContext) -> pb.CreateRunResponse:
        run = self._service.create_run(
            call_context(),
            request.experiment_id,
            request.run_name,
            request.start_time,
            request.tags,
            request.parent_run_id,
        )
        return pb.CreateRunResponse(run=conv.run_to_proto(run))

    def GetRun(self, request: pb.GetRunRequest, context: grpc.ServicerContext) -> pb.GetRunResponse:
        return pb.GetRunResponse(run=conv.run_to_proto(self._service.get_run(call_context(), request.run_id)))

    def UpdateRun(self, request: pb.UpdateRunRequest, context: grpc.ServicerContext) -> pb.UpdateRunResponse:
        info = self._service.update_run(
            call_context(),
            request.run_id,
            status=conv.run_status(request.status) if request.HasField("status") else None,
            end_time=request.end_time if request.HasField("end_time") else None,
            run_name=request.run_name if request.HasField("run_name") else None,
        )
        return pb.UpdateRunResponse(run_info=conv.run_info_to_proto(info))

    def DeleteRun(self, request: pb.DeleteRunRequest, context: grpc.ServicerContext) -> pb.DeleteRunResponse:
        self._service.delete_run(call_context(), request.run_id)
        return pb.DeleteRunResponse()

    def RestoreRun(
        self, request: pb.RestoreRunRequest, context: grpc.ServicerContext
    ) -> pb.RestoreRunResponse:
        self._service.restore_run(call_context(), request.run_id)
        return pb.RestoreRunResponse()

    def ListRunEvents(
        self, request: pb.ListRunEventsRequest, context: grpc.ServicerContext
    ) -> pb.ListRunEventsResponse:
        events, resume_at = self._service.list_run_events(
            call_context(),
            request.experiment_ids,
            request.run_id,
            conv.run_event_actions(request.actions),
            request.cursor,
            request.page_size,
        )
        return pb.ListRunEventsResponse(
            events=[conv.run_event_to_proto(event) for event in events],
            next_cursor=encode_cursor(resume_at),
        )

    def SearchRuns(
        self, request: pb.SearchRunsRequest, context: grpc.ServicerContext
    ) -> pb.SearchRunsResponse:
        page = self._service.search_runs(
            call_context(),
            list(request.experiment_ids),
            request.filter,
            list(request.order_by),
            conv.view_type(request.run_view_type, "run_view_type"),
            request.page_size,
            request.page_token,
        )
        return pb.SearchRunsResponse(
            runs=conv.runs_to_proto(page.items), next_page_token=page.next_page_token
        )

    # ---------------------------------------------------------------- run data

    def LogParam(self, request: pb.LogParamRequest, context: grpc.ServicerContext) -> pb.LogParamResponse:
        self._service.log_param(call_context(), request.run_id, conv.param_from_proto(request.param))
        return pb.LogParamResponse()

    def LogMetric(self, request: pb.LogMetricRequest, context: grpc.ServicerContext) -> pb.LogMetricResponse:
        self._service.log_metric(call_context(), request.run_id, request.metric)
        return pb.LogMetricResponse()

    def SetTag(self, request: pb.SetTagRequest, context: grpc.ServicerContext) -> pb.SetTagResponse:
        self._service.set_tag(call_context(), request.run_id, request.key, request.value)
        return pb.SetTagResponse()

    def DeleteTag(self, request: pb.DeleteTagRequest, context: grpc.ServicerContext) -> pb.DeleteTagResponse:
        self._service.delete_tag(call_context(), request.run_id, request.key)
        return pb.DeleteTagResponse()

    def LogBatch(self, request: pb.LogBatchRequest, context: grpc.ServicerContext) -> pb.LogBatchResponse:
        self._service.log_batch(
            call_context(),
            request.run_id,
            request.metrics,
            [conv.param_from_proto(p) for p in request.params],
            request.tags,
        )
        return pb.LogBatchResponse()

    def LogMetrics(
        self, request_iterator: Iterator[pb.LogMetricsRequest], context: grpc.ServicerContext
    ) -> pb.LogMetricsResponse:
        # Each message is its own transaction: a broken stream keeps what arrived before the break.
        # The domain and the store read the decoded protos as they are (MetricPoint): no copy per point.
        batches = ((request.run_id, request.metrics) for request in request_iterator)
        return pb.LogMetricsResponse(stored_count=self._service.log_metrics_stream(call_context(), batches))

    def GetMetricHistory(
        self, request: pb.GetMetricHistoryRequest, context: grpc.ServicerContext
    ) -> pb.GetMetricHistoryResponse:
        page = self._service.get_metric_history(
            call_context(), request.run_id, request.metric_key, request.page_size, request.page_token
        )
        return pb.GetMetricHistoryResponse(
            metrics=[conv.metric_to_proto(m) for m in page.items], next_page_token=page.next_page_token
        )

    # ---------------------------------------------------------------- artifacts

    def UploadArtifact(
        self,
        request_iterator: Iterator[pb.UploadArtifactRequest | memoryview],
        context: grpc.ServicerContext,
    ) -> pb.UploadArtifactResponse:
        """Chunks arrive as views (see add_to_server), or as messages when registered alone."""
        first = next(request_iterator, None)
        if not isinstance(first, pb.UploadArtifactRequest) or first.WhichOneof("payload") != "metadata":
            raise InvalidArgumentError(
                "MISSING_METADATA",
                "the first message of an upload must carry metadata",
                {"field": "metadata"},
            )
        metadata = first.metadata
        file = self._service.upload_artifact(
            call_context(),
            metadata.run_id,
            metadata.path,
            _UploadStream(request_iterator, self._count_bytes),
            metadata.expected_sha256 or None,
        )
        return pb.UploadArtifactResponse(file=conv.file_to_proto(file))

    def DownloadArtifact(
        self, request: pb.DownloadArtifactRequest, context: grpc.ServicerContext
    ) -> Iterator[pb.DownloadArtifactResponse]:
        """The generated-class form of download_frames, for a server registered without add_to_server."""
        return map(pb.DownloadArtifactResponse.FromString, self.download_frames(request, context))

    def download_frames(
        self, request: pb.DownloadArtifactRequest, context: grpc.ServicerContext
    ) -> Iterator[bytes]:
        """DownloadArtifact's responses, serialized: the metadata, then one frame per chunk."""
        file, chunks = self._service.download_artifact(call_context(), request.run_id, request.path)
        yield transfer.encode_download_metadata(conv.file_to_proto(file))
        for chunk in chunks:
            self._count_bytes("out", len(chunk))
            yield transfer.encode_chunk(chunk)

    def ListArtifacts(
        self, request: pb.ListArtifactsRequest, context: grpc.ServicerContext
    ) -> pb.ListArtifactsResponse:
        files = self._service.list_artifacts(
            call_context(), request.run_id, request.path, recursive=request.recursive
        )
        return pb.ListArtifactsResponse(files=[conv.file_to_proto(f) for f in files])

    def StatArtifact(
        self, request: pb.StatArtifactRequest, context: grpc.ServicerContext
    ) -> pb.StatArtifactResponse:
        return pb.StatArtifactResponse(
            file=conv.file_to_proto(self._service.stat_artifact(call_context(), request.run_id, request.path))
        )

    def SealArtifacts(
        self, request: pb.SealArtifactsRequest, context: grpc.ServicerContext
    ) -> pb.SealArtifactsResponse:
        files = self._service.seal_artifacts(call_context(), request.run_id, request.path)
        return pb.SealArtifactsResponse(files=[conv.file_to_proto(f) for f in files])

    # ---------------------------------------------------------------- permissions

    def SetExperimentPermission(
        self, request: pb.SetExperimentPermissionRequest, context: grpc.ServicerContext
    ) -> pb.SetExperimentPermissionResponse:
        grant = self._service.set_experiment_permission(
            call_context(),
            request.experiment_id,
            request.principal.user,
            request.principal.group,
            request.level,
        )
        return pb.SetExperimentPermissionResponse(permission=permission_pb(grant))

    def DeleteExperimentPermission(
        self, request: pb.DeleteExperimentPermissionRequest, context: grpc.ServicerContext
    ) -> pb.DeleteExperimentPermissionResponse:
        self._service.delete_experiment_permission(
            call_context(), request.experiment_id, request.principal.user, request.principal.group
        )
        return pb.DeleteExperimentPermissionResponse()

    def ListExperimentPermissions(
        self, request: pb.ListExperimentPermissionsRequest, context: grpc.ServicerContext
    ) -> pb.ListExperimentPermissionsResponse:
        grants, events = self._service.list_experiment_permissions(call_context(), request.experiment_id)
        return pb.ListExperimentPermissionsResponse(
            permissions=[permission_pb(g) for g in grants],
            events=[permission_event_pb(e) for e in events],
        )


def add_to_server(servicer: TrackingServicer, server: grpc.Server) -> None:
    """Registers the service, its artifact streams with chunks framed by modelreg.wire.

    Parsing an upload chunk into the generated message and reading ``.chunk`` back copied every
    1 MiB twice, each time into fresh memory, and a download chunk was copied into a message and
    then serialized: ~15% of the server's CPU per upload. Registering a method again replaces its
    handler, so the generated registration stays the source of every other method.
    """
    pb_grpc.add_TrackingServiceServicer_to_server(servicer, server)
    artifact_streams = {
        "UploadArtifact": grpc.stream_unary_rpc_method_handler(
            servicer.UploadArtifact,
            request_deserializer=transfer.decode_upload,
            response_serializer=pb.UploadArtifactResponse.SerializeToString,
        ),
        "DownloadArtifact": grpc.unary_stream_rpc_method_handler(
            servicer.download_frames,
            request_deserializer=pb.DownloadArtifactRequest.FromString,
            response_serializer=None,  # the frames are serialized already
        ),
    }
    # grpc-stubs 1.53 predates this method (grpcio 1.62).
    server.add_registered_method_handlers(SERVICE_NAME, artifact_streams)  # type: ignore[attr-defined]


class _UploadStream:
    """The content of an upload, then its declared end (tracking_service.domain.UploadContent).

    Raising while iterating makes the artifact store discard the staged copy: a stream that ends
    without ``end`` (a client interrupted or killed mid-file half-closes it as if it were done),
    or sends anything after it, is INCOMPLETE_UPLOAD.
    """

    def __init__(self, requests: Iterable[pb.UploadArtifactRequest | memoryview], count_bytes: ByteCounter):
        self._requests = requests
        self._count_bytes = count_bytes
        self._end: tuple[int, str] | None = None

    @property
    def declared(self) -> tuple[int, str]:
        if self._end is None:
            raise RuntimeError("the declaration is read once the chunks are consumed")
        return self._end

    def __iter__(self) -> Iterator[bytes | memoryview]:
        for request in self._requests:
            if self._end is not None:
                raise _incomplete("nothing may follow the end message of an upload")
            if isinstance(request, memoryview):
                chunk: bytes | memoryview = request
            elif (payload := request.WhichOneof("payload")) == "chunk":
                chunk = request.chunk
            elif payload == "end":
                self._end = (request.end.size, request.end.sha256)
                continue
            elif payload is None:
                raise InvalidArgumentError(
                    "MALFORMED_REQUEST",
                    "an upload message carries no chunk or end (empty, or not an UploadArtifactRequest)",
                    {"field": "payload"},
                )
            else:
                raise InvalidArgumentError(
                    "DUPLICATE_METADATA",
                    "only the first message of an upload may carry metadata",
                    {"field": "metadata"},
                )
            if len(chunk) > transfer.CHUNK_BYTES:
                raise InvalidArgumentError(
                    "CHUNK_TOO_LARGE",
                    f"chunk of {len(chunk)} bytes exceeds {transfer.CHUNK_BYTES}",
                    {"field": "chunk"},
                )
            self._count_bytes("in", len(chunk))
            yield chunk
        if self._end is None:
            raise _incomplete("the upload ended without its end message")


def _incomplete(why: str) -> InvalidArgumentError:
    return InvalidArgumentError("INCOMPLETE_UPLOAD", f"{why}: nothing was stored", {"field": "end"})
