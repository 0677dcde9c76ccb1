"""TrackingService: the input it refuses before any store call, page tokens, and the use cases
it composes over SqlTrackingStore (every backend) and file:// artifacts."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import pytest

from modelreg_server.context import CallContext
from modelreg_server.errors import ServiceError
from tracking_service.artifacts import ArtifactStore
from tracking_service.domain.entities import Metric, Param, ViewType
from tracking_service.domain.service import TrackingService
from tracking_service.store import TrackingStore

CTX = CallContext(actor="alice", request_id="req-test")
RUN = "a" * 32
LONG = "x" * 251


def reason(call: Callable[[], object]) -> str:
    with pytest.raises(ServiceError) as caught:
        call()
    return caught.value.reason


class Declared:
    """Upload content as a client sends it: the chunks, then their size and sha256."""

    def __init__(self, chunks: list[bytes | memoryview]) -> None:
        self._chunks = chunks
        data = b"".join(chunks)
        self.declared = (len(data), hashlib.sha256(data).hexdigest())

    def __iter__(self) -> Iterator[bytes | memoryview]:
        return iter(self._chunks)


class Unreachable:
    """A store no call may reach: the input must be refused before the store is called, i.e.
    before any transaction opens."""

    def __getattr__(self, name: str) -> Callable[..., Any]:
        def refuse(*args: object, **kwargs: object) -> Any:
            raise AssertionError(f"{name} was called for input the domain should have refused")

        return refuse


@pytest.fixture
def guarded() -> TrackingService:
    return TrackingService(
        cast(TrackingStore, Unreachable()), cast(ArtifactStore, Unreachable()), ["file:///unreachable"]
    )


Case = tuple[Callable[[TrackingService], object], str]

# One case per validation rule (and per use case applying it): each raised from the store before
# TrackingService validated its input.
REFUSED: dict[str, Case] = {
    # experiments
    "experiment name empty": (lambda s: s.create_experiment(CTX, ""), "INVALID_NAME"),
    "experiment name blank": (lambda s: s.create_experiment(CTX, "   "), "INVALID_NAME"),
    "experiment name too long": (lambda s: s.create_experiment(CTX, LONG), "INVALID_NAME"),
    "experiment tag key empty": (lambda s: s.create_experiment(CTX, "ok", tags={"": "v"}), "INVALID_TAG"),
    "experiment tag value too long": (
        lambda s: s.create_experiment(CTX, "ok", tags={"k": "v" * 8001}),
        "INVALID_TAG",
    ),
    "experiment tags too many": (
        lambda s: s.create_experiment(CTX, "ok", tags={f"t{i}": "v" for i in range(101)}),
        "BATCH_TOO_LARGE",
    ),
    "artifact location scheme": (
        lambda s: s.create_experiment(CTX, "ok", "http://elsewhere"),
        "INVALID_ARTIFACT_LOCATION",
    ),
    "artifact location relative": (
        lambda s: s.create_experiment(CTX, "ok", "a/b"),
        "INVALID_ARTIFACT_LOCATION",
    ),
    "get experiment id": (lambda s: s.get_experiment(CTX, "x"), "INVALID_EXPERIMENT_ID"),
    "get experiment id negative": (lambda s: s.get_experiment(CTX, "-1"), "INVALID_EXPERIMENT_ID"),
    "get experiment id empty": (lambda s: s.get_experiment(CTX, ""), "INVALID_EXPERIMENT_ID"),
    "get experiment id past int32": (lambda s: s.get_experiment(CTX, str(2**31)), "INVALID_EXPERIMENT_ID"),
    "rename experiment id": (lambda s: s.rename_experiment(CTX, "x", "new"), "INVALID_EXPERIMENT_ID"),
    "rename experiment name": (lambda s: s.rename_experiment(CTX, "1", ""), "INVALID_NAME"),
    "experiment tag id": (lambda s: s.set_experiment_tag(CTX, "x", "k", "v"), "INVALID_EXPERIMENT_ID"),
    "experiment tag key": (lambda s: s.set_experiment_tag(CTX, "1", "", "v"), "INVALID_TAG"),
    "experiment tag value": (lambda s: s.set_experiment_tag(CTX, "1", "k", "v" * 8001), "INVALID_TAG"),
    "delete experiment tag id": (lambda s: s.delete_experiment_tag(CTX, "x", "k"), "INVALID_EXPERIMENT_ID"),
    "delete experiment id": (lambda s: s.delete_experiment(CTX, "x"), "INVALID_EXPERIMENT_ID"),
    "delete default experiment": (lambda s: s.delete_experiment(CTX, "0"), "DEFAULT_EXPERIMENT_PROTECTED"),
    "delete default experiment 00": (
        lambda s: s.delete_experiment(CTX, "00"),
        "DEFAULT_EXPERIMENT_PROTECTED",
    ),
    "restore experiment id": (lambda s: s.restore_experiment(CTX, "x"), "INVALID_EXPERIMENT_ID"),
    "experiment filter": (
        lambda s: s.search_experiments(CTX, "status = 'x'", [], ViewType.ACTIVE_ONLY, 0, ""),
        "INVALID_FILTER",
    ),
    "experiment order_by": (
        lambda s: s.search_experiments(CTX, "", ["metrics.a"], ViewType.ACTIVE_ONLY, 0, ""),
        "INVALID_ORDER_BY",
    ),
    "experiment page size": (
        lambda s: s.search_experiments(CTX, "", [], ViewType.ACTIVE_ONLY, -5, ""),
        "INVALID_PAGE_SIZE",
    ),
    "experiment page token": (
        lambda s: s.search_experiments(CTX, "", [], ViewType.ACTIVE_ONLY, 0, "garbage!"),
        "INVALID_PAGE_TOKEN",
    ),
    # runs
    "run experiment id": (lambda s: s.create_run(CTX, "x"), "INVALID_EXPERIMENT_ID"),
    "run name too long": (lambda s: s.create_run(CTX, run_name="n" * 251), "INVALID_NAME"),
    "run tag key": (lambda s: s.create_run(CTX, tags={"": "v"}), "INVALID_TAG"),
    "run tags too many": (
        lambda s: s.create_run(CTX, tags={f"t{i}": "v" for i in range(101)}),
        "BATCH_TOO_LARGE",
    ),
    "parent run id": (lambda s: s.create_run(CTX, parent_run_id="short"), "INVALID_RUN_ID"),
    "get run id": (lambda s: s.get_run(CTX, "not-an-id"), "INVALID_RUN_ID"),
    "get run id uppercase": (lambda s: s.get_run(CTX, "A" * 32), "INVALID_RUN_ID"),
    "update run id": (lambda s: s.update_run(CTX, "x", end_time=1), "INVALID_RUN_ID"),
    "update run name": (lambda s: s.update_run(CTX, RUN, run_name=""), "INVALID_NAME"),
    "delete run id": (lambda s: s.delete_run(CTX, "x"), "INVALID_RUN_ID"),
    "restore run id": (lambda s: s.restore_run(CTX, "x"), "INVALID_RUN_ID"),
    "run search experiment ids": (
        lambda s: s.search_runs(CTX, ["0", "x"], "", [], ViewType.ACTIVE_ONLY, 0, ""),
        "INVALID_EXPERIMENT_ID",
    ),
    "run filter OR": (
        lambda s: s.search_runs(CTX, [], "metrics.a < 1 OR metrics.b < 1", [], ViewType.ACTIVE_ONLY, 0, ""),
        "INVALID_FILTER",
    ),
    "run filter type": (
        lambda s: s.search_runs(CTX, [], "metrics.a < 'x'", [], ViewType.ACTIVE_ONLY, 0, ""),
        "INVALID_FILTER",
    ),
    "run order_by": (
        lambda s: s.search_runs(CTX, [], "", ["metrics.a UP"], ViewType.ACTIVE_ONLY, 0, ""),
        "INVALID_ORDER_BY",
    ),
    "run page size": (
        lambda s: s.search_runs(CTX, [], "", [], ViewType.ACTIVE_ONLY, -1, ""),
        "INVALID_PAGE_SIZE",
    ),
    "run page token malformed": (
        lambda s: s.search_runs(CTX, [], "", [], ViewType.ACTIVE_ONLY, 0, "garbage!"),
        "INVALID_PAGE_TOKEN",
    ),
    "run page token without offset": (
        lambda s: s.search_runs(CTX, [], "", [], ViewType.ACTIVE_ONLY, 0, "eyJ4IjoxfQ=="),
        "INVALID_PAGE_TOKEN",
    ),
    # run data
    "param key empty": (lambda s: s.log_param(CTX, RUN, Param("", "1")), "INVALID_PARAM"),
    "param key too long": (lambda s: s.log_param(CTX, RUN, Param(LONG, "1")), "INVALID_PARAM"),
    "param value too long": (lambda s: s.log_param(CTX, RUN, Param("p", "x" * 6001)), "INVALID_PARAM"),
    "param run id": (lambda s: s.log_param(CTX, "x", Param("p", "1")), "INVALID_RUN_ID"),
    "metric key empty": (lambda s: s.log_metric(CTX, RUN, Metric("", 1.0, 1)), "INVALID_METRIC"),
    "metric key alphabet": (lambda s: s.log_metric(CTX, RUN, Metric("bad*key", 1.0, 1)), "INVALID_METRIC"),
    "metric key too long": (lambda s: s.log_metric(CTX, RUN, Metric(LONG, 1.0, 1)), "INVALID_METRIC"),
    "metric timestamp negative": (lambda s: s.log_metric(CTX, RUN, Metric("k", 1.0, -5)), "INVALID_METRIC"),
    "metric run id": (lambda s: s.log_metric(CTX, "x", Metric("k", 1.0, 1)), "INVALID_RUN_ID"),
    "tag key too long": (lambda s: s.set_tag(CTX, RUN, LONG, "v"), "INVALID_TAG"),
    "tag value too long": (lambda s: s.set_tag(CTX, RUN, "k", "v" * 8001), "INVALID_TAG"),
    "tag run id": (lambda s: s.set_tag(CTX, "x", "k", "v"), "INVALID_RUN_ID"),
    "delete tag run id": (lambda s: s.delete_tag(CTX, "x", "k"), "INVALID_RUN_ID"),
    "batch metrics too many": (
        lambda s: s.log_batch(CTX, RUN, metrics=[Metric("m", 1.0, 1, i) for i in range(1001)]),
        "BATCH_TOO_LARGE",
    ),
    "batch params too many": (
        lambda s: s.log_batch(CTX, RUN, params=[Param(f"p{i}", "v") for i in range(101)]),
        "BATCH_TOO_LARGE",
    ),
    "batch tags too many": (
        lambda s: s.log_batch(CTX, RUN, tags={f"t{i}": "v" for i in range(101)}),
        "BATCH_TOO_LARGE",
    ),
    "batch param conflict within": (
        lambda s: s.log_batch(CTX, RUN, params=[Param("a", "1"), Param("a", "2")]),
        "PARAM_VALUE_CONFLICT",
    ),
    "batch param invalid": (
        lambda s: s.log_batch(CTX, RUN, metrics=[Metric("ok", 1.0, 1)], params=[Param("p", "x" * 6001)]),
        "INVALID_PARAM",
    ),
    # a bad point anywhere in the batch, not only the first of its key
    "batch metric late bad timestamp": (
        lambda s: s.log_batch(CTX, RUN, metrics=[Metric("m", 1.0, 1), Metric("m", 1.0, -1)]),
        "INVALID_METRIC",
    ),
    "batch metric late bad key": (
        lambda s: s.log_batch(CTX, RUN, metrics=[Metric("m", 1.0, 1), Metric("a b*", 1.0, 1)]),
        "INVALID_METRIC",
    ),
    "batch tag invalid": (lambda s: s.log_batch(CTX, RUN, tags={"": "v"}), "INVALID_TAG"),
    "batch run id": (lambda s: s.log_batch(CTX, "x", tags={"k": "v"}), "INVALID_RUN_ID"),
    "stream batch too many": (
        lambda s: s.log_metrics(CTX, RUN, [Metric("m", 1.0, 1, i) for i in range(10_001)]),
        "BATCH_TOO_LARGE",
    ),
    "stream metric invalid": (
        lambda s: s.log_metrics(CTX, RUN, [Metric("m", 1.0, 1), Metric("bad*key", 1.0, 1)]),
        "INVALID_METRIC",
    ),
    "stream run id": (lambda s: s.log_metrics(CTX, "x", [Metric("m", 1.0, 1)]), "INVALID_RUN_ID"),
    "history run id": (lambda s: s.get_metric_history(CTX, "x", "m"), "INVALID_RUN_ID"),
    "history page size": (lambda s: s.get_metric_history(CTX, RUN, "m", page_size=-1), "INVALID_PAGE_SIZE"),
    "history page token": (
        lambda s: s.get_metric_history(CTX, RUN, "m", page_token="%%%"),
        "INVALID_PAGE_TOKEN",
    ),
    # artifacts
    "upload run id": (lambda s: s.upload_artifact(CTX, "x", "f", Declared([b"1"])), "INVALID_RUN_ID"),
    "upload path empty": (
        lambda s: s.upload_artifact(CTX, RUN, "", Declared([b"1"])),
        "INVALID_ARTIFACT_PATH",
    ),
    "download run id": (lambda s: s.download_artifact(CTX, "x", "f"), "INVALID_RUN_ID"),
    "download path empty": (lambda s: s.download_artifact(CTX, RUN, ""), "INVALID_ARTIFACT_PATH"),
    "list run id": (lambda s: s.list_artifacts(CTX, "x"), "INVALID_RUN_ID"),
    "list path": (lambda s: s.list_artifacts(CTX, RUN, "../up"), "INVALID_ARTIFACT_PATH"),
    "stat run id": (lambda s: s.stat_artifact(CTX, "x", "f"), "INVALID_RUN_ID"),
    "stat path": (lambda s: s.stat_artifact(CTX, RUN, "/abs"), "INVALID_ARTIFACT_PATH"),
}


@pytest.mark.parametrize("case", REFUSED.values(), ids=REFUSED.keys())
def test_invalid_input_is_refused_before_the_store(guarded: TrackingService, case: Case) -> None:
    call, expected = case
    assert reason(lambda: call(guarded)) == expected


BAD_PATHS = ["../escape", "/etc/passwd", "a//b", "a/./b", "a/../b", "a\\b", "a\0b", "trailing/", "x" * 1025]


@pytest.mark.parametrize("path", BAD_PATHS)
def test_bad_artifact_paths_are_refused_before_the_store(guarded: TrackingService, path: str) -> None:
    for call in (
        lambda: guarded.upload_artifact(CTX, RUN, path, Declared([b"1"])),
        lambda: guarded.download_artifact(CTX, RUN, path),
        lambda: guarded.list_artifacts(CTX, RUN, path),
        lambda: guarded.stat_artifact(CTX, RUN, path),
    ):
        assert reason(call) == "INVALID_ARTIFACT_PATH"


def test_run_is_named_when_no_name_is_given(service: TrackingService, ctx: CallContext) -> None:
    run = service.create_run(ctx)
    assert run.info.experiment_id == "0"
    assert run.info.run_name.count("-") == 2
    assert service.create_run(ctx, "00", run_name="named").info.run_name == "named"


def test_refused_batches_write_nothing(service: TrackingService, ctx: CallContext) -> None:
    run_id = service.create_run(ctx).info.run_id
    service.log_param(ctx, run_id, Param("fixed", "1"))
    for batch in (
        {"metrics": [Metric("ok", 1.0, 1)], "params": [Param("p", "x" * 6001)]},
        {"metrics": [Metric("ok", 1.0, 1)], "params": [Param("a", "1"), Param("a", "2")]},
        {"metrics": [Metric("ok", 1.0, 1), Metric("ok", 1.0, -1)], "tags": {"t": "v"}},
        {"metrics": [Metric("ok", 1.0, 1)], "params": [Param("new", "x"), Param("fixed", "2")]},
    ):
        with pytest.raises(ServiceError):
            service.log_batch(ctx, run_id, **batch)  # type: ignore[arg-type]
    run = service.get_run(ctx, run_id)
    assert run.data.params == (Param("fixed", "1"),)
    assert run.data.metrics == () and run.data.tags == {}
    assert service.get_metric_history(ctx, run_id, "ok").items == ()


def test_writes_reach_the_run(service: TrackingService, ctx: CallContext) -> None:
    run_id = service.create_run(ctx, tags={"a": "b"}).info.run_id
    service.log_param(ctx, run_id, Param("alpha", "0.5"))
    service.log_metric(ctx, run_id, Metric("loss", 0.3, 5, 1))
    service.set_tag(ctx, run_id, "t", "x")
    service.delete_tag(ctx, run_id, "a")
    service.log_batch(ctx, run_id, [Metric("loss", 0.2, 6, 2)], [Param("beta", "1")], {"u": "y"})
    assert service.log_metrics(ctx, run_id, [Metric("loss", 0.1, 7, 3), Metric("acc", 0.9, 7, 3)]) == 2
    data = service.get_run(ctx, run_id).data
    assert data.params == (Param("alpha", "0.5"), Param("beta", "1"))
    assert data.metrics == (Metric("acc", 0.9, 7, 3), Metric("loss", 0.1, 7, 3))
    assert data.tags == {"t": "x", "u": "y"}
    assert reason(lambda: service.delete_tag(ctx, run_id, "a")) == "TAG_NOT_FOUND"
    assert reason(lambda: service.log_param(ctx, "0" * 32, Param("a", "1"))) == "RUN_NOT_FOUND"


def test_metric_history_pages(service: TrackingService, ctx: CallContext) -> None:
    run_id = service.create_run(ctx).info.run_id
    service.log_metrics(ctx, run_id, [Metric("m", float(i), 1000 + i, i) for i in range(25)])
    seen: list[float] = []
    token = ""
    while True:
        page = service.get_metric_history(ctx, run_id, "m", page_size=10, page_token=token)
        seen.extend(m.value for m in page.items)
        token = page.next_page_token
        if not token:
            break
    assert seen == [float(i) for i in range(25)]
    first = service.get_metric_history(ctx, run_id, "m", page_size=10)
    assert reason(
        lambda: service.get_metric_history(
            ctx, run_id, "other", page_size=10, page_token=first.next_page_token
        )
    ) == ("INVALID_PAGE_TOKEN")
    assert reason(lambda: service.get_metric_history(ctx, "0" * 32, "m")) == "RUN_NOT_FOUND"


def test_search_runs_pages_are_complete_and_deterministic(service: TrackingService, ctx: CallContext) -> None:
    created = {service.create_run(ctx, start_time=1000).info.run_id for _ in range(7)}  # all tie
    seen: list[str] = []
    token = ""
    while True:
        page = service.search_runs(ctx, ["0"], "", [], ViewType.ACTIVE_ONLY, 3, token)
        seen.extend(r.info.run_id for r in page.items)
        token = page.next_page_token
        if not token:
            break
    assert seen == sorted(created)
    exact = service.search_runs(ctx, ["0"], "", [], ViewType.ACTIVE_ONLY, 7, "")
    assert len(exact.items) == 7 and exact.next_page_token == ""  # a full last page says so
    first = service.search_runs(ctx, ["0"], "", [], ViewType.ACTIVE_ONLY, 3, "")
    for other_query in (
        lambda: service.search_runs(
            ctx, ["0"], "metrics.a < 1", [], ViewType.ACTIVE_ONLY, 3, first.next_page_token
        ),
        lambda: service.search_runs(ctx, [], "", [], ViewType.ACTIVE_ONLY, 3, first.next_page_token),
        lambda: service.search_runs(ctx, ["0"], "", [], ViewType.ALL, 3, first.next_page_token),
        lambda: service.search_runs(
            ctx, ["0"], "", ["run_id"], ViewType.ACTIVE_ONLY, 3, first.next_page_token
        ),
    ):
        assert reason(other_query) == "INVALID_PAGE_TOKEN"


def test_search_runs_through_the_domain(service: TrackingService, ctx: CallContext) -> None:
    fast = service.create_run(ctx, run_name="fast").info.run_id
    slow = service.create_run(ctx, run_name="slow").info.run_id
    service.log_metric(ctx, fast, Metric("rmse", 0.1, 1))
    service.log_metric(ctx, slow, Metric("rmse", 0.9, 1))
    for _ in range(2):  # the second time from the parsed-query cache
        page = service.search_runs(ctx, ["0"], "metrics.rmse < 0.5", [], ViewType.ACTIVE_ONLY, 0, "")
        assert [r.info.run_name for r in page.items] == ["fast"]
    ordered = service.search_runs(ctx, [], "", ["metrics.rmse DESC"], ViewType.ACTIVE_ONLY, 0, "")
    assert [r.info.run_name for r in ordered.items] == ["slow", "fast"]
    service.delete_run(ctx, slow)
    assert [
        r.info.run_id for r in service.search_runs(ctx, [], "", [], ViewType.DELETED_ONLY, 0, "").items
    ] == [slow]
    service.restore_run(ctx, slow)
    finished = service.update_run(ctx, slow, end_time=5, run_name="slower")
    assert (finished.end_time, finished.run_name) == (5, "slower")


def test_experiments_through_the_domain(service: TrackingService, ctx: CallContext, tmp_path: Path) -> None:
    elsewhere = (tmp_path / "artifacts" / "elsewhere").as_uri()
    created = service.create_experiment(ctx, "exp-a", f"{elsewhere}/", {"team": "x"})
    assert created.artifact_location == elsewhere  # no trailing '/'
    experiment_id = created.experiment_id
    assert service.get_experiment(ctx, experiment_id) == created
    assert service.get_experiment_by_name(ctx, "exp-a") == created
    assert service.rename_experiment(ctx, experiment_id, "exp-b").name == "exp-b"
    service.set_experiment_tag(ctx, experiment_id, "k", "v")
    service.delete_experiment_tag(ctx, experiment_id, "team")
    assert service.get_experiment(ctx, experiment_id).tags == {"k": "v"}
    service.delete_experiment(ctx, experiment_id)
    assert service.search_experiments(ctx, "name = 'exp-b'", [], ViewType.ACTIVE_ONLY, 0, "").items == ()
    service.restore_experiment(ctx, experiment_id)
    first = service.search_experiments(ctx, "", ["experiment_id"], ViewType.ACTIVE_ONLY, 1, "")
    second = service.search_experiments(
        ctx, "", ["experiment_id"], ViewType.ACTIVE_ONLY, 1, first.next_page_token
    )
    assert [e.experiment_id for e in first.items + second.items] == ["0", experiment_id]
    assert second.next_page_token == ""
    assert reason(
        lambda: service.search_experiments(ctx, "", ["name"], ViewType.ACTIVE_ONLY, 1, first.next_page_token)
    ) == ("INVALID_PAGE_TOKEN")
    assert reason(lambda: service.get_experiment(ctx, "42")) == "EXPERIMENT_NOT_FOUND"
    assert reason(lambda: service.delete_experiment(ctx, "00")) == "DEFAULT_EXPERIMENT_PROTECTED"
    assert service.get_experiment(ctx, "0").lifecycle_stage.value == "active"


def test_artifacts_through_the_domain(service: TrackingService, ctx: CallContext) -> None:
    run_id = service.create_run(ctx).info.run_id
    stored = service.upload_artifact(ctx, run_id, "model/weights.bin", Declared([b"ab", memoryview(b"c")]))
    assert (stored.size, stored.sha256) == (3, hashlib.sha256(b"abc").hexdigest())
    service.upload_artifact(ctx, run_id, "model/conf/x.yaml", Declared([b"k: v"]))
    service.upload_artifact(ctx, run_id, "README", Declared([]))
    file, chunks = service.download_artifact(ctx, run_id, "model/weights.bin")
    assert file == stored and b"".join(chunks) == b"abc"
    assert [(f.path, f.is_dir) for f in service.list_artifacts(ctx, run_id)] == [
        ("README", False),
        ("model", True),
    ]
    assert [(f.path, f.is_dir) for f in service.list_artifacts(ctx, run_id, "model")] == [
        ("model/conf", True),
        ("model/weights.bin", False),
    ]
    assert [f.path for f in service.list_artifacts(ctx, run_id, recursive=True)] == [
        "README",
        "model/conf/x.yaml",
        "model/weights.bin",
    ]
    assert service.list_artifacts(ctx, run_id, "README") == []  # a file lists as empty
    assert service.stat_artifact(ctx, run_id, "model").is_dir
    assert service.stat_artifact(ctx, run_id, "").is_dir
    assert service.stat_artifact(ctx, run_id, "README").size == 0
    for missing in (
        lambda: service.stat_artifact(ctx, run_id, "nope"),
        lambda: service.download_artifact(ctx, run_id, "model"),
    ):
        assert reason(missing) == "ARTIFACT_NOT_FOUND"
    assert (
        reason(lambda: service.upload_artifact(ctx, run_id, "model", Declared([b"1"])))
        == "INVALID_ARTIFACT_PATH"
    )
    assert reason(lambda: service.list_artifacts(ctx, "0" * 32)) == "RUN_NOT_FOUND"
    service.delete_run(ctx, run_id)
    assert reason(lambda: service.upload_artifact(ctx, run_id, "late", Declared([b"1"]))) == "RUN_DELETED"


def test_mlflow_name_and_parent_tags_are_the_run_columns(service: TrackingService, ctx: CallContext) -> None:
    parent = service.create_run(ctx, tags={"mlflow.runName": "parent"})
    assert parent.info.run_name == "parent" and parent.data.tags == {}
    child = service.create_run(ctx, tags={"mlflow.parentRunId": parent.info.run_id, "k": "v"})
    assert child.info.parent_run_id == parent.info.run_id and child.data.tags == {"k": "v"}
    conflicting = {"mlflow.runName": "a"}
    assert reason(lambda: service.create_run(ctx, run_name="b", tags=conflicting)) == "CONFLICTING_RUN_TAG"
    service.set_tag(ctx, child.info.run_id, "mlflow.runName", "renamed")  # as in MLflow: a rename
    assert service.get_run(ctx, child.info.run_id).info.run_name == "renamed"
    run_id = child.info.run_id
    assert reason(lambda: service.set_tag(ctx, run_id, "mlflow.parentRunId", run_id)) == "RESERVED_TAG"
    assert reason(lambda: service.log_batch(ctx, run_id, tags={"mlflow.runName": "x"})) == "RESERVED_TAG"
    found = service.search_runs(
        ctx, [], f"tags.mlflow.parentRunId = '{parent.info.run_id}'", [], ViewType.ACTIVE_ONLY, 0, ""
    )
    assert [r.info.run_id for r in found.items] == [run_id]
