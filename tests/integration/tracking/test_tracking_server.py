"""The tracking server over a real gRPC channel: every RPC, its errors, streams and restarts."""

from __future__ import annotations

import hashlib
import math
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
import sqlalchemy as sa
from grpc_health.v1 import health_pb2, health_pb2_grpc

from modelreg.tracking.v1 import tracking_pb2 as pb
from modelreg.tracking.v1.tracking_pb2_grpc import TrackingServiceStub
from modelreg_server.db import SchemaOutOfDate
from tests.conftest import Backend, S3Server
from tracking_service.artifacts import S3Options
from tracking_service.config import Settings
from tracking_service.server import create_server

from .conftest import Tracking, rpc_error, running, stored_files

INVALID = grpc.StatusCode.INVALID_ARGUMENT
NOT_FOUND = grpc.StatusCode.NOT_FOUND
MiB = 1024 * 1024


def new_run(stub: TrackingServiceStub, **fields: Any) -> pb.Run:
    return stub.CreateRun(pb.CreateRunRequest(**fields)).run


def upload(
    stub: TrackingServiceStub, run_id: str, path: str, chunks: list[bytes], expected_sha256: str = ""
) -> pb.FileInfo:
    requests = [
        pb.UploadArtifactRequest(
            metadata=pb.UploadArtifactMetadata(run_id=run_id, path=path, expected_sha256=expected_sha256)
        ),
        *(pb.UploadArtifactRequest(chunk=c) for c in chunks),
        end_of(chunks),
    ]
    return stub.UploadArtifact(iter(requests)).file


def end_of(chunks: list[bytes]) -> pb.UploadArtifactRequest:
    """The end message a client sends after ``chunks``."""
    data = b"".join(chunks)
    return pb.UploadArtifactRequest(
        end=pb.UploadArtifactEnd(size=len(data), sha256=hashlib.sha256(data).hexdigest())
    )


def download(stub: TrackingServiceStub, run_id: str, path: str) -> tuple[pb.FileInfo, bytes]:
    responses = list(stub.DownloadArtifact(pb.DownloadArtifactRequest(run_id=run_id, path=path)))
    assert responses[0].WhichOneof("payload") == "metadata"
    return responses[0].metadata, b"".join(r.chunk for r in responses[1:])


def test_experiment_rpcs(tracking: Tracking) -> None:
    stub = tracking.stub
    created = stub.CreateExperiment(pb.CreateExperimentRequest(name="exp", tags={"team": "a"})).experiment
    assert created.experiment_id == "1" and created.lifecycle_stage == pb.LIFECYCLE_STAGE_ACTIVE
    assert created.artifact_location == f"{tracking.settings.artifact_root}/1"
    assert stub.GetExperiment(pb.GetExperimentRequest(experiment_id="1")).experiment == created
    assert stub.GetExperimentByName(pb.GetExperimentByNameRequest(name="exp")).experiment == created
    renamed = stub.RenameExperiment(pb.RenameExperimentRequest(experiment_id="1", new_name="exp2")).experiment
    assert renamed.name == "exp2"
    stub.SetExperimentTag(pb.SetExperimentTagRequest(experiment_id="1", key="k", value="v"))
    stub.DeleteExperimentTag(pb.DeleteExperimentTagRequest(experiment_id="1", key="team"))
    assert dict(stub.GetExperiment(pb.GetExperimentRequest(experiment_id="1")).experiment.tags) == {"k": "v"}
    found = stub.SearchExperiments(pb.SearchExperimentsRequest(filter="name LIKE 'exp%'"))
    assert [e.name for e in found.experiments] == ["exp2"] and found.next_page_token == ""
    stub.DeleteExperiment(pb.DeleteExperimentRequest(experiment_id="1"))
    everything = stub.SearchExperiments(
        pb.SearchExperimentsRequest(view_type=pb.VIEW_TYPE_ALL, order_by=["name"])
    )
    assert [e.name for e in everything.experiments] == ["Default", "exp2"]
    assert stub.SearchExperiments(pb.SearchExperimentsRequest()).experiments[0].name == "Default"
    stub.RestoreExperiment(pb.RestoreExperimentRequest(experiment_id="1"))
    assert stub.GetExperiment(pb.GetExperimentRequest(experiment_id="1")).experiment.lifecycle_stage == (
        pb.LIFECYCLE_STAGE_ACTIVE
    )


def test_run_rpcs(tracking: Tracking) -> None:
    stub = tracking.stub
    parent = new_run(stub)
    run = new_run(stub, run_name="child", start_time=1234, tags={"a": "b"}, parent_run_id=parent.info.run_id)
    run_id = run.info.run_id
    assert run.info.experiment_id == "0" and run.info.status == pb.RUN_STATUS_RUNNING
    assert run.info.artifact_uri == f"{tracking.settings.artifact_root}/0/{run_id}/artifacts"
    stub.LogParam(pb.LogParamRequest(run_id=run_id, param=pb.Param(key="alpha", value="0.5")))
    stub.LogMetric(
        pb.LogMetricRequest(run_id=run_id, metric=pb.Metric(key="loss", value=0.3, timestamp=5, step=1))
    )
    stub.SetTag(pb.SetTagRequest(run_id=run_id, key="t", value="x"))
    stub.DeleteTag(pb.DeleteTagRequest(run_id=run_id, key="a"))
    stub.LogBatch(
        pb.LogBatchRequest(
            run_id=run_id,
            metrics=[pb.Metric(key="loss", value=math.nan, timestamp=6, step=2)],
            params=[pb.Param(key="beta", value="1")],
            tags={"u": "y"},
        )
    )
    fetched = stub.GetRun(pb.GetRunRequest(run_id=run_id)).run
    assert fetched.info.parent_run_id == parent.info.run_id and fetched.info.start_time == 1234
    assert {p.key: p.value for p in fetched.data.params} == {"alpha": "0.5", "beta": "1"}
    (latest,) = fetched.data.metrics
    assert latest.step == 2 and math.isnan(latest.value)
    assert dict(fetched.data.tags) == {"t": "x", "u": "y"}
    info = stub.UpdateRun(
        pb.UpdateRunRequest(run_id=run_id, status=pb.RUN_STATUS_FINISHED, end_time=9999)
    ).run_info
    assert (info.status, info.end_time, info.run_name) == (pb.RUN_STATUS_FINISHED, 9999, "child")
    history = stub.GetMetricHistory(pb.GetMetricHistoryRequest(run_id=run_id, metric_key="loss", page_size=1))
    assert [m.step for m in history.metrics] == [1] and history.next_page_token
    rest = stub.GetMetricHistory(
        pb.GetMetricHistoryRequest(
            run_id=run_id, metric_key="loss", page_size=1, page_token=history.next_page_token
        )
    )
    assert [m.step for m in rest.metrics] == [2] and rest.next_page_token == ""
    found = stub.SearchRuns(
        pb.SearchRunsRequest(
            experiment_ids=["0"], filter="params.alpha = '0.5' AND attributes.status = 'FINISHED'"
        )
    )
    assert [r.info.run_id for r in found.runs] == [run_id]
    stub.DeleteRun(pb.DeleteRunRequest(run_id=run_id))
    assert [r.info.run_id for r in stub.SearchRuns(pb.SearchRunsRequest()).runs] == [parent.info.run_id]
    stub.RestoreRun(pb.RestoreRunRequest(run_id=run_id))
    assert len(stub.SearchRuns(pb.SearchRunsRequest(order_by=["metrics.loss DESC"])).runs) == 2


def test_log_metrics_stream_stores_each_batch_whole(tracking: Tracking) -> None:
    stub = tracking.stub
    run_id = new_run(stub).info.run_id

    def batch(start: int, count: int, key: str = "m") -> pb.LogMetricsRequest:
        return pb.LogMetricsRequest(
            run_id=run_id,
            metrics=[pb.Metric(key=key, value=i, timestamp=1, step=i) for i in range(start, start + count)],
        )

    stored = stub.LogMetrics(iter([batch(0, 500), batch(500, 10_000)])).stored_count
    assert stored == 10_500
    # The second message is bad as a whole (one invalid key): the first is kept, the second stored nothing.
    bad = batch(20_000, 3)
    bad.metrics.append(pb.Metric(key="bad*key", value=1, timestamp=1))
    assert rpc_error(lambda: stub.LogMetrics(iter([batch(10_500, 100), bad]))) == (INVALID, "INVALID_METRIC")
    assert rpc_error(lambda: stub.LogMetrics(iter([batch(0, 10_001)]))) == (INVALID, "BATCH_TOO_LARGE")
    history = stub.GetMetricHistory(
        pb.GetMetricHistoryRequest(run_id=run_id, metric_key="m", page_size=100_000)
    )
    assert len(history.metrics) == 10_600
    (latest,) = stub.GetRun(pb.GetRunRequest(run_id=run_id)).run.data.metrics
    assert latest.step == 10_599


def test_artifact_rpcs(tracking: Tracking) -> None:
    stub = tracking.stub
    run_id = new_run(stub).info.run_id
    content = [b"a" * MiB, b"b" * 1000]
    digest = hashlib.sha256(b"".join(content)).hexdigest()
    stored = upload(stub, run_id, "model/weights.bin", content, expected_sha256=digest)
    assert (stored.path, stored.file_size, stored.sha256, stored.is_dir) == (
        "model/weights.bin",
        MiB + 1000,
        digest,
        False,
    )
    upload(stub, run_id, "model/conf/x.yaml", [b"k: v"])
    upload(stub, run_id, "README", [])
    metadata, data = download(stub, run_id, "model/weights.bin")
    assert metadata.sha256 == digest and hashlib.sha256(data).hexdigest() == digest
    root = stub.ListArtifacts(pb.ListArtifactsRequest(run_id=run_id)).files
    assert [(f.path, f.is_dir) for f in root] == [("README", False), ("model", True)]
    model = stub.ListArtifacts(pb.ListArtifactsRequest(run_id=run_id, path="model")).files
    assert [(f.path, f.is_dir) for f in model] == [("model/conf", True), ("model/weights.bin", False)]
    everything = stub.ListArtifacts(pb.ListArtifactsRequest(run_id=run_id, recursive=True)).files
    assert [f.path for f in everything] == ["README", "model/conf/x.yaml", "model/weights.bin"]
    assert stub.StatArtifact(pb.StatArtifactRequest(run_id=run_id, path="model")).file.is_dir
    assert stub.StatArtifact(pb.StatArtifactRequest(run_id=run_id, path="README")).file.file_size == 0
    assert rpc_error(lambda: stub.StatArtifact(pb.StatArtifactRequest(run_id=run_id, path="nope"))) == (
        NOT_FOUND,
        "ARTIFACT_NOT_FOUND",
    )
    assert rpc_error(lambda: download(stub, run_id, "model")) == (NOT_FOUND, "ARTIFACT_NOT_FOUND")
    assert rpc_error(lambda: upload(stub, run_id, "x", [b"1"], expected_sha256="0" * 64)) == (
        INVALID,
        "DIGEST_MISMATCH",
    )
    assert rpc_error(lambda: upload(stub, run_id, "y", [b"z" * (MiB + 1)])) == (INVALID, "CHUNK_TOO_LARGE")
    assert rpc_error(lambda: upload(stub, run_id, "model", [b"1"])) == (INVALID, "INVALID_ARTIFACT_PATH")
    missing_metadata = iter([pb.UploadArtifactRequest(chunk=b"1")])
    assert rpc_error(lambda: stub.UploadArtifact(missing_metadata)) == (INVALID, "MISSING_METADATA")
    paths = [f.path for f in stub.ListArtifacts(pb.ListArtifactsRequest(run_id=run_id, recursive=True)).files]
    assert paths == ["README", "model/conf/x.yaml", "model/weights.bin"]
    stub.DeleteRun(pb.DeleteRunRequest(run_id=run_id))
    assert rpc_error(lambda: upload(stub, run_id, "late", [b"1"])) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "RUN_DELETED",
    )


@pytest.mark.parametrize(
    "path", ["../escape", "/etc/passwd", "a//b", "a/./b", "a/../b", "a\\b", "trailing/", "x" * 1025]
)
def test_bad_artifact_paths(tracking: Tracking, path: str) -> None:
    run_id = new_run(tracking.stub).info.run_id
    assert rpc_error(lambda: upload(tracking.stub, run_id, path, [b"1"])) == (
        INVALID,
        "INVALID_ARTIFACT_PATH",
    )
    assert rpc_error(lambda: download(tracking.stub, run_id, path)) == (INVALID, "INVALID_ARTIFACT_PATH")
    assert not any(Path(tracking.settings.artifact_root.removeprefix("file://")).rglob("*1*"))


def test_interrupted_upload_leaves_nothing(tracking: Tracking) -> None:
    stub = tracking.stub
    run_id = new_run(stub).info.run_id
    sent_some = threading.Event()
    stop = threading.Event()

    def requests() -> Iterator[pb.UploadArtifactRequest]:
        yield pb.UploadArtifactRequest(metadata=pb.UploadArtifactMetadata(run_id=run_id, path="big.bin"))
        for _ in range(4):
            yield pb.UploadArtifactRequest(chunk=b"x" * MiB)
        sent_some.set()
        stop.wait(10)  # hold the stream open until the client cancels

    future = stub.UploadArtifact.future(requests())
    assert sent_some.wait(10)
    future.cancel()  # type: ignore[no-untyped-call]
    stop.set()
    assert future.cancelled() or future.exception() is not None
    listing = stub.ListArtifacts(pb.ListArtifactsRequest(run_id=run_id, recursive=True)).files
    assert list(listing) == []
    root = Path(tracking.settings.artifact_root.removeprefix("file://"))
    for _ in range(50):  # the server notices the cancellation asynchronously
        if not stored_files(root):
            break
        threading.Event().wait(0.1)
    assert stored_files(root) == []


def test_bad_input_status_and_reason(tracking: Tracking) -> None:
    stub = tracking.stub
    run_id = new_run(stub).info.run_id
    missing_run = "0" * 32
    cases = [
        (lambda: stub.CreateExperiment(pb.CreateExperimentRequest(name="")), INVALID, "INVALID_NAME"),
        (lambda: stub.CreateExperiment(pb.CreateExperimentRequest(name="n" * 251)), INVALID, "INVALID_NAME"),
        (
            lambda: stub.CreateExperiment(pb.CreateExperimentRequest(name="Default")),
            grpc.StatusCode.ALREADY_EXISTS,
            "EXPERIMENT_ALREADY_EXISTS",
        ),
        (
            lambda: stub.GetExperiment(pb.GetExperimentRequest(experiment_id="77")),
            NOT_FOUND,
            "EXPERIMENT_NOT_FOUND",
        ),
        (
            lambda: stub.GetExperimentByName(pb.GetExperimentByNameRequest(name="nope")),
            NOT_FOUND,
            "EXPERIMENT_NOT_FOUND",
        ),
        (
            lambda: stub.DeleteExperiment(pb.DeleteExperimentRequest(experiment_id="0")),
            grpc.StatusCode.FAILED_PRECONDITION,
            "DEFAULT_EXPERIMENT_PROTECTED",
        ),
        (lambda: stub.GetRun(pb.GetRunRequest(run_id=missing_run)), NOT_FOUND, "RUN_NOT_FOUND"),
        (lambda: stub.GetRun(pb.GetRunRequest(run_id="short")), INVALID, "INVALID_RUN_ID"),
        (
            lambda: stub.CreateRun(pb.CreateRunRequest(parent_run_id=missing_run)),
            NOT_FOUND,
            "PARENT_RUN_NOT_FOUND",
        ),
        (
            lambda: stub.UpdateRun(pb.UpdateRunRequest(run_id=run_id, status=pb.RUN_STATUS_UNSPECIFIED)),
            INVALID,
            "INVALID_STATUS",
        ),
        (lambda: stub.UpdateRun(pb.UpdateRunRequest(run_id=run_id, run_name="")), INVALID, "INVALID_NAME"),
        (
            lambda: stub.SearchRuns(pb.SearchRunsRequest(filter="metrics.a < 1 OR metrics.b > 2")),
            INVALID,
            "INVALID_FILTER",
        ),
        (lambda: stub.SearchRuns(pb.SearchRunsRequest(filter="params.a = ")), INVALID, "INVALID_FILTER"),
        (lambda: stub.SearchRuns(pb.SearchRunsRequest(filter="metrics.a < 'x'")), INVALID, "INVALID_FILTER"),
        (
            lambda: stub.SearchRuns(pb.SearchRunsRequest(order_by=["metrics.a SIDEWAYS"])),
            INVALID,
            "INVALID_ORDER_BY",
        ),
        (lambda: stub.SearchRuns(pb.SearchRunsRequest(page_size=-1)), INVALID, "INVALID_PAGE_SIZE"),
        (lambda: stub.SearchRuns(pb.SearchRunsRequest(page_token="%%%")), INVALID, "INVALID_PAGE_TOKEN"),
        (
            lambda: stub.SearchExperiments(pb.SearchExperimentsRequest(filter="nonsense")),
            INVALID,
            "INVALID_FILTER",
        ),
        (
            lambda: stub.SearchExperiments(pb.SearchExperimentsRequest(page_size=-5)),
            INVALID,
            "INVALID_PAGE_SIZE",
        ),
        (
            lambda: stub.LogParam(pb.LogParamRequest(run_id=missing_run, param=pb.Param(key="a", value="1"))),
            NOT_FOUND,
            "RUN_NOT_FOUND",
        ),
        (
            lambda: stub.LogParam(pb.LogParamRequest(run_id=run_id, param=pb.Param(key="", value="1"))),
            INVALID,
            "INVALID_PARAM",
        ),
        (
            lambda: stub.LogMetric(pb.LogMetricRequest(run_id=run_id, metric=pb.Metric(key="a*b", value=1))),
            INVALID,
            "INVALID_METRIC",
        ),
        (
            lambda: stub.SetTag(pb.SetTagRequest(run_id=run_id, key="k" * 251, value="v")),
            INVALID,
            "INVALID_TAG",
        ),
        (
            lambda: stub.DeleteTag(pb.DeleteTagRequest(run_id=run_id, key="absent")),
            NOT_FOUND,
            "TAG_NOT_FOUND",
        ),
        (
            lambda: stub.LogBatch(
                pb.LogBatchRequest(
                    run_id=run_id, params=[pb.Param(key=f"p{i}", value="v") for i in range(101)]
                )
            ),
            INVALID,
            "BATCH_TOO_LARGE",
        ),
        (
            lambda: stub.GetMetricHistory(pb.GetMetricHistoryRequest(run_id=missing_run, metric_key="m")),
            NOT_FOUND,
            "RUN_NOT_FOUND",
        ),
        (lambda: stub.ListArtifacts(pb.ListArtifactsRequest(run_id=missing_run)), NOT_FOUND, "RUN_NOT_FOUND"),
    ]
    for call, code, reason in cases:
        assert rpc_error(call) == (code, reason), reason
    stub.LogParam(pb.LogParamRequest(run_id=run_id, param=pb.Param(key="a", value="1")))
    conflict = pb.LogBatchRequest(
        run_id=run_id,
        params=[pb.Param(key="b", value="2"), pb.Param(key="a", value="other")],
        tags={"t": "v"},
    )
    assert rpc_error(lambda: stub.LogBatch(conflict)) == (INVALID, "PARAM_VALUE_CONFLICT")
    data = stub.GetRun(pb.GetRunRequest(run_id=run_id)).run.data
    assert [p.key for p in data.params] == ["a"] and dict(data.tags) == {}


def test_health_serving(tracking: Tracking) -> None:
    health = health_pb2_grpc.HealthStub(tracking.channel)
    for service in ("", "modelreg.tracking.v1.TrackingService"):
        response = health.Check(health_pb2.HealthCheckRequest(service=service))
        assert response.status == health_pb2.HealthCheckResponse.SERVING


def test_restart_keeps_data(tracking_settings: Settings) -> None:
    with running(tracking_settings) as first:
        run_id = new_run(first.stub, run_name="keep").info.run_id
        upload(first.stub, run_id, "f.txt", [b"hello"])
    with running(tracking_settings) as second:
        assert second.stub.GetRun(pb.GetRunRequest(run_id=run_id)).run.info.run_name == "keep"
        assert download(second.stub, run_id, "f.txt")[1] == b"hello"
        assert [e.name for e in second.stub.SearchExperiments(pb.SearchExperimentsRequest()).experiments] == [
            "Default"
        ]


def test_out_of_date_schema_is_refused(tracking_settings: Settings, backend: Backend) -> None:
    with running(tracking_settings):
        pass
    engine = sa.create_engine(backend.url)
    with engine.begin() as connection:
        connection.execute(sa.text("UPDATE alembic_version SET version_num = '0000_older'"))
    engine.dispose()
    # Only a fresh database (or, on SQLite, an embedded one) is migrated automatically.
    refusing = [False] if backend.name == "sqlite" else [False, True]
    for auto_migrate in refusing:
        with pytest.raises(SchemaOutOfDate, match="python -m tracking_service db upgrade"):
            create_server(Settings(**{**tracking_settings.__dict__, "auto_migrate": auto_migrate}))


def test_fresh_database_without_auto_migrate_is_refused(tracking_settings: Settings) -> None:
    settings = Settings(**{**tracking_settings.__dict__, "auto_migrate": False})
    with pytest.raises(SchemaOutOfDate):
        create_server(settings)


@pytest.mark.s3
def test_artifacts_on_s3(backend: Backend, s3_server: S3Server, s3_bucket: str) -> None:
    if backend.name != "sqlite":
        pytest.skip("the S3 path does not depend on the database backend")
    settings = Settings(
        host="127.0.0.1",
        port=0,
        database_url=backend.url,
        artifact_root=f"s3://{s3_bucket}/prefix",
        s3=S3Options(
            endpoint=s3_server.endpoint, access_key=s3_server.access_key, secret_key=s3_server.secret_key
        ),
        workers=4,
    )
    with running(settings) as started:
        run = new_run(started.stub)
        assert run.info.artifact_uri.startswith(f"s3://{s3_bucket}/prefix/0/")
        payload = [b"s" * MiB, b"3"]
        stored = upload(started.stub, run.info.run_id, "dir/model.bin", payload)
        assert stored.sha256 == hashlib.sha256(b"".join(payload)).hexdigest()
        metadata, data = download(started.stub, run.info.run_id, "dir/model.bin")
        assert data == b"".join(payload) and metadata.file_size == MiB + 1
