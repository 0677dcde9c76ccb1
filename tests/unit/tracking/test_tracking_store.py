"""SqlTrackingStore behaviour on every backend: the rules that must hold whatever the database."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest

from modelreg_server.errors import ServiceError
from tracking_service.domain.entities import LifecycleStage, Metric, Param, RunStatus, ViewType
from tracking_service.store.sql import SqlTrackingStore


def reason(exc: pytest.ExceptionInfo[ServiceError]) -> str:
    return exc.value.reason


def test_default_experiment_exists_once(store: SqlTrackingStore) -> None:
    store.ensure_default_experiment()
    default = store.get_experiment("0")
    assert default.name == "Default"
    assert default.artifact_location.endswith("/artifacts/0")
    assert store.get_experiment_by_name("Default").experiment_id == "0"
    assert [e.experiment_id for e in store.search_experiments().items] == ["0"]
    with pytest.raises(ServiceError) as caught:
        store.delete_experiment("0")
    assert reason(caught) == "DEFAULT_EXPERIMENT_PROTECTED"


def test_experiment_ids_count_up_and_names_are_unique(store: SqlTrackingStore) -> None:
    first = store.create_experiment("first", tags={"team": "a"})
    second = store.create_experiment("second")
    assert (first.experiment_id, second.experiment_id) == ("1", "2")
    assert first.artifact_location.endswith("/artifacts/1")
    assert store.get_experiment("1").tags == {"team": "a"}
    with pytest.raises(ServiceError) as caught:
        store.create_experiment("first")
    assert reason(caught) == "EXPERIMENT_ALREADY_EXISTS"
    with pytest.raises(ServiceError) as caught:
        store.rename_experiment("2", "first")
    assert reason(caught) == "EXPERIMENT_ALREADY_EXISTS"
    # Names are case-sensitive on every backend (MySQL is not, by default).
    assert store.create_experiment("FIRST").name == "FIRST"


def test_run_gets_generated_name_artifact_uri_and_parent(store: SqlTrackingStore) -> None:
    parent = store.create_run("0")
    child = store.create_run("0", run_name="child", tags={"k": "v"}, parent_run_id=parent.info.run_id)
    assert len(parent.info.run_id) == 32
    assert parent.info.run_name.count("-") == 2
    assert parent.info.status is RunStatus.RUNNING
    assert child.info.artifact_uri.endswith(f"/0/{child.info.run_id}/artifacts")
    fetched = store.get_run(child.info.run_id)
    assert fetched.info.parent_run_id == parent.info.run_id
    assert fetched.data.tags == {"k": "v"}
    with pytest.raises(ServiceError) as caught:
        store.create_run("0", parent_run_id="f" * 32)
    assert reason(caught) == "PARENT_RUN_NOT_FOUND"
    with pytest.raises(ServiceError) as caught:
        store.create_run("999")
    assert reason(caught) == "EXPERIMENT_NOT_FOUND"


def test_params_are_immutable(store: SqlTrackingStore) -> None:
    run_id = store.create_run().info.run_id
    store.log_param(run_id, Param("alpha", "0.5"))
    store.log_param(run_id, Param("alpha", "0.5"))  # same value: no-op
    with pytest.raises(ServiceError) as caught:
        store.log_param(run_id, Param("alpha", "0.7"))
    assert reason(caught) == "PARAM_VALUE_CONFLICT"
    assert caught.value.metadata["key"] == "alpha"
    # Case matters: "Alpha" is another key, "0.5" vs "0.50" another value.
    store.log_param(run_id, Param("Alpha", "x"))
    assert store.get_run(run_id).data.params == (Param("Alpha", "x"), Param("alpha", "0.5"))


def test_log_batch_is_atomic(store: SqlTrackingStore) -> None:
    run_id = store.create_run().info.run_id
    store.log_param(run_id, Param("fixed", "1"))
    with pytest.raises(ServiceError) as caught:
        store.log_batch(
            run_id,
            metrics=[Metric("loss", 1.0, 10, 0)],
            params=[Param("new", "x"), Param("fixed", "2")],
            tags={"t": "v"},
        )
    assert reason(caught) == "PARAM_VALUE_CONFLICT"
    with pytest.raises(ServiceError) as caught:
        store.log_batch(run_id, params=[Param("a", "1"), Param("a", "2")])
    assert reason(caught) == "PARAM_VALUE_CONFLICT"
    with pytest.raises(ServiceError) as caught:
        store.log_batch(run_id, metrics=[Metric("ok", 1.0, 1)], params=[Param("p", "x" * 6001)])
    assert reason(caught) == "INVALID_PARAM"
    run = store.get_run(run_id)
    assert run.data.params == (Param("fixed", "1"),)
    assert run.data.metrics == () and run.data.tags == {}
    assert store.get_metric_history(run_id, "loss").items == ()


def test_batch_limits(store: SqlTrackingStore) -> None:
    run_id = store.create_run().info.run_id
    for kwargs in (
        {"metrics": [Metric("m", 1.0, 1, i) for i in range(1001)]},
        {"params": [Param(f"p{i}", "v") for i in range(101)]},
        {"tags": {f"t{i}": "v" for i in range(101)}},
    ):
        with pytest.raises(ServiceError) as caught:
            store.log_batch(run_id, **kwargs)  # type: ignore[arg-type]
        assert reason(caught) == "BATCH_TOO_LARGE"


def test_metric_values_round_trip(store: SqlTrackingStore) -> None:
    # One database per backend for all values: creating databases is what makes these tests slow.
    for value in (math.nan, math.inf, -math.inf, 0.0, -1.5, 1e308, -1e-308, 5e-324):
        run_id = store.create_run().info.run_id
        store.log_metric(run_id, Metric("m", value, 1000, 3))
        (latest,) = store.get_run(run_id).data.metrics
        (point,) = store.get_metric_history(run_id, "m").items
        for got in (latest.value, point.value):
            assert math.isnan(got) if math.isnan(value) else got == value, (value, got)
        assert (point.timestamp, point.step) == (1000, 3)


def test_latest_metric_follows_step_then_timestamp_then_value(store: SqlTrackingStore) -> None:
    run_id = store.create_run().info.run_id

    def latest() -> Metric:
        return next(m for m in store.get_run(run_id).data.metrics if m.key == "m")

    store.log_metric(run_id, Metric("m", 5.0, 100, 2))
    store.log_metric(run_id, Metric("m", 9.0, 999, 1))  # older step loses despite later timestamp
    assert latest() == Metric("m", 5.0, 100, 2)
    store.log_metric(run_id, Metric("m", 1.0, 101, 2))  # same step, later timestamp wins
    assert latest() == Metric("m", 1.0, 101, 2)
    store.log_metric(run_id, Metric("m", 0.5, 101, 2))  # full tie but smaller value loses
    assert latest() == Metric("m", 1.0, 101, 2)
    store.log_batch(
        run_id, metrics=[Metric("m", 7.0, 50, 3), Metric("m", 3.0, 40, 3), Metric("m", 8.0, 50, 3)]
    )
    assert latest() == Metric("m", 8.0, 50, 3)
    assert store.log_metrics(run_id, [Metric("m", 2.0, 1, 4), Metric("x", 2.0, 1, 0)]) == 2
    assert latest() == Metric("m", 2.0, 1, 4)
    history = store.get_metric_history(run_id, "m").items
    assert [(m.step, m.timestamp) for m in history] == sorted((m.step, m.timestamp) for m in history)
    assert len(history) == 8


def test_metric_timestamp_zero_means_now(store: SqlTrackingStore) -> None:
    run_id = store.create_run().info.run_id
    store.log_metric(run_id, Metric("m", 1.0, 0))
    assert store.get_run(run_id).data.metrics[0].timestamp > 1_600_000_000_000


def test_metric_history_pagination(store: SqlTrackingStore) -> None:
    run_id = store.create_run().info.run_id
    store.log_metrics(run_id, [Metric("m", float(i), 1000 + i, i) for i in range(25)])
    seen: list[float] = []
    token = ""
    while True:
        page = store.get_metric_history(run_id, "m", page_size=10, page_token=token)
        seen.extend(m.value for m in page.items)
        token = page.next_page_token
        if not token:
            break
    assert seen == [float(i) for i in range(25)]


def test_deleted_run_rejects_writes_and_restores(store: SqlTrackingStore) -> None:
    run_id = store.create_run().info.run_id
    store.delete_run(run_id)
    assert store.get_run(run_id).info.lifecycle_stage is LifecycleStage.DELETED
    for write in (
        lambda: store.log_param(run_id, Param("a", "1")),
        lambda: store.log_metric(run_id, Metric("a", 1.0, 1)),
        lambda: store.set_tag(run_id, "a", "1"),
        lambda: store.update_run(run_id, status=RunStatus.FINISHED),
    ):
        with pytest.raises(ServiceError) as caught:
            write()
        assert reason(caught) == "RUN_DELETED"
    assert store.search_runs().items == ()
    assert [r.info.run_id for r in store.search_runs(view=ViewType.DELETED_ONLY).items] == [run_id]
    store.restore_run(run_id)
    store.set_tag(run_id, "a", "1")
    assert store.get_run(run_id).info.lifecycle_stage is LifecycleStage.ACTIVE


def test_experiment_delete_hides_its_runs_and_restore_brings_back_only_those(store: SqlTrackingStore) -> None:
    experiment_id = store.create_experiment("e").experiment_id
    kept = store.create_run(experiment_id).info.run_id
    deleted_before = store.create_run(experiment_id).info.run_id
    store.delete_run(deleted_before)
    store.delete_experiment(experiment_id)
    assert store.get_experiment(experiment_id).lifecycle_stage is LifecycleStage.DELETED
    assert store.search_runs([experiment_id]).items == ()
    assert [e.name for e in store.search_experiments(view=ViewType.DELETED_ONLY).items] == ["e"]
    with pytest.raises(ServiceError) as caught:
        store.create_run(experiment_id)
    assert reason(caught) == "EXPERIMENT_DELETED"
    with pytest.raises(ServiceError) as caught:
        store.create_experiment("e")  # a deleted experiment still holds its name
    assert reason(caught) == "EXPERIMENT_ALREADY_EXISTS"
    store.restore_experiment(experiment_id)
    assert [r.info.run_id for r in store.search_runs([experiment_id]).items] == [kept]
    assert store.get_run(deleted_before).info.lifecycle_stage is LifecycleStage.DELETED


def test_tags_set_replace_delete(store: SqlTrackingStore) -> None:
    run_id = store.create_run().info.run_id
    store.set_tag(run_id, "k", "1")
    store.set_tag(run_id, "k", "2")
    assert store.get_run(run_id).data.tags == {"k": "2"}
    store.delete_tag(run_id, "k")
    with pytest.raises(ServiceError) as caught:
        store.delete_tag(run_id, "k")
    assert reason(caught) == "TAG_NOT_FOUND"
    store.set_experiment_tag("0", "owner", "me")
    store.set_experiment_tag("0", "owner", "you")
    assert store.get_experiment("0").tags == {"owner": "you"}
    store.delete_experiment_tag("0", "owner")
    with pytest.raises(ServiceError) as caught:
        store.delete_experiment_tag("0", "owner")
    assert reason(caught) == "TAG_NOT_FOUND"


@pytest.fixture
def runs(store: SqlTrackingStore) -> dict[str, str]:
    """Five runs with metrics, params and tags to search over; name -> run id."""
    ids: dict[str, str] = {}
    specs = [
        ("r0", 0.9, "0.1", "vision", 1000),
        ("r1", 0.5, "0.2", "vision", 2000),
        ("r2", math.nan, "0.3", "Vision", 3000),
        ("r3", 0.1, "0.4", "nlp", 4000),
        ("r4", None, None, None, 5000),
    ]
    for name, rmse, alpha, team, start in specs:
        run_id = store.create_run("0", run_name=name, start_time=start).info.run_id
        store.log_batch(
            run_id,
            metrics=[Metric("rmse", rmse, 1, 0)] if rmse is not None else [],
            params=[Param("alpha", alpha)] if alpha is not None else [],
            tags={"team": team} if team is not None else {},
        )
        ids[name] = run_id
    store.update_run(ids["r3"], status=RunStatus.FINISHED, end_time=4500)
    return ids


def _names(store: SqlTrackingStore, filter_string: str = "", order_by: tuple[str, ...] = ()) -> list[str]:
    return [r.info.run_name for r in store.search_runs(["0"], filter_string, order_by=order_by).items]


FILTER_CASES: list[tuple[str, list[str]]] = [
    ("", ["r4", "r3", "r2", "r1", "r0"]),
    ("metrics.rmse < 0.6", ["r3", "r1"]),
    ("metrics.rmse >= 0.5", ["r1", "r0"]),
    ("metrics.rmse != 0.5", ["r3", "r2", "r0"]),
    ("metrics.rmse = 0", []),
    ("params.alpha = '0.2'", ["r1"]),
    ("params.alpha != '0.2'", ["r3", "r2", "r0"]),
    ("params.alpha IN ('0.1', '0.4')", ["r3", "r0"]),
    ("params.alpha NOT IN ('0.1', '0.4')", ["r2", "r1"]),
    ("tags.team = 'vision'", ["r1", "r0"]),
    ("tags.team LIKE 'vis%'", ["r1", "r0"]),
    ("tags.team LIKE 'v_sion'", ["r1", "r0"]),
    ("tags.team ILIKE 'vis%'", ["r2", "r1", "r0"]),
    ("attributes.status = 'FINISHED'", ["r3"]),
    ("attributes.run_name IN ('r0', 'r4')", ["r4", "r0"]),
    ("attributes.start_time >= 3000 AND metrics.rmse < 1", ["r3"]),
    ("attributes.end_time > 0", ["r3"]),
    ("metrics.rmse < 1 AND params.alpha = '0.1' AND tags.team = 'vision'", ["r0"]),
]


def test_search_runs_filters(store: SqlTrackingStore, runs: dict[str, str]) -> None:
    for filter_string, expected in FILTER_CASES:
        assert _names(store, filter_string) == expected, filter_string


ORDER_CASES: list[tuple[tuple[str, ...], list[str]]] = [
    (("metrics.rmse ASC",), ["r3", "r1", "r0", "r2", "r4"]),  # NaN after numbers, missing last
    (("metrics.rmse DESC",), ["r0", "r1", "r3", "r2", "r4"]),
    (("params.alpha DESC",), ["r3", "r2", "r1", "r0", "r4"]),
    (("attributes.start_time",), ["r0", "r1", "r2", "r3", "r4"]),
    (("end_time DESC", "start_time"), ["r3", "r0", "r1", "r2", "r4"]),
]


def test_search_runs_order(store: SqlTrackingStore, runs: dict[str, str]) -> None:
    for order_by, expected in ORDER_CASES:
        assert _names(store, order_by=order_by) == expected, order_by


# A filter on the key ordered by takes the inner-join path (the key's index gives the order).
FILTERED_ORDER_CASES: list[tuple[str, tuple[str, ...], list[str]]] = [
    ("metrics.rmse < 1", ("metrics.rmse ASC",), ["r3", "r1", "r0"]),
    ("metrics.rmse < 1", ("metrics.rmse DESC",), ["r0", "r1", "r3"]),
    ("metrics.rmse != 0.5", ("metrics.rmse ASC",), ["r3", "r0", "r2"]),  # NaN still after numbers
    ("metrics.rmse != 0.5 AND metrics.rmse > 0", ("metrics.rmse DESC",), ["r0", "r3"]),
    ("metrics.rmse < 1", ("params.alpha DESC",), ["r3", "r1", "r0"]),
    ("params.alpha != '0.2'", ("params.alpha DESC", "metrics.rmse"), ["r3", "r2", "r0"]),
    ("tags.team LIKE 'v%'", ("tags.team", "start_time DESC"), ["r1", "r0"]),
]


def test_search_runs_filtered_order(store: SqlTrackingStore, runs: dict[str, str]) -> None:
    for filter_string, order_by, expected in FILTERED_ORDER_CASES:
        assert _names(store, filter_string, order_by) == expected, (filter_string, order_by)


def test_search_runs_pagination_is_complete_and_deterministic(store: SqlTrackingStore) -> None:
    created = {store.create_run("0", start_time=1000).info.run_id for _ in range(7)}  # all tie on start_time
    seen: list[str] = []
    token = ""
    while True:
        page = store.search_runs(["0"], page_size=3, page_token=token)
        seen.extend(r.info.run_id for r in page.items)
        token = page.next_page_token
        if not token:
            break
    assert seen == sorted(created)
    with pytest.raises(ServiceError) as caught:
        store.search_runs(
            ["0"],
            "metrics.a < 1",
            page_size=3,
            page_token=store.search_runs(["0"], page_size=3).next_page_token,
        )
    assert reason(caught) == "INVALID_PAGE_TOKEN"
    for bad_token in ("garbage!", "eyJ4IjoxfQ=="):
        with pytest.raises(ServiceError) as caught:
            store.search_runs(page_token=bad_token)
        assert reason(caught) == "INVALID_PAGE_TOKEN"
    with pytest.raises(ServiceError) as caught:
        store.search_runs(page_size=-1)
    assert reason(caught) == "INVALID_PAGE_SIZE"


def test_search_experiments(store: SqlTrackingStore) -> None:
    store.create_experiment("exp-a", tags={"team": "x"})
    store.create_experiment("exp-b")
    store.create_experiment("other")
    names = [e.name for e in store.search_experiments("name LIKE 'exp-%'", ["name DESC"]).items]
    assert names == ["exp-b", "exp-a"]
    assert [e.name for e in store.search_experiments("tags.team = 'x'").items] == ["exp-a"]
    assert [e.name for e in store.search_experiments("name ILIKE 'EXP-A'").items] == ["exp-a"]
    assert [e.name for e in store.search_experiments("name LIKE 'EXP-%'").items] == []
    first = store.search_experiments(order_by=["experiment_id"], page_size=2)
    second = store.search_experiments(
        order_by=["experiment_id"], page_size=2, page_token=first.next_page_token
    )
    assert [e.experiment_id for e in first.items + second.items] == ["0", "1", "2", "3"]
    assert second.next_page_token == ""


BAD_INPUT_CASES: list[tuple[Callable[[SqlTrackingStore], object], str]] = [
    (lambda s: s.get_run("0" * 32), "RUN_NOT_FOUND"),
    (lambda s: s.get_run("not-an-id"), "INVALID_RUN_ID"),
    (lambda s: s.get_experiment("42"), "EXPERIMENT_NOT_FOUND"),
    (lambda s: s.get_experiment("x"), "INVALID_EXPERIMENT_ID"),
    (lambda s: s.create_experiment(""), "INVALID_NAME"),
    (lambda s: s.create_experiment("x" * 251), "INVALID_NAME"),
    (lambda s: s.create_experiment("ok", tags={"": "v"}), "INVALID_TAG"),
    (lambda s: s.create_run(run_name="n" * 251), "INVALID_NAME"),
    (lambda s: s.search_runs(filter_string="metrics.a < 1 OR metrics.b < 1"), "INVALID_FILTER"),
    (lambda s: s.search_runs(order_by=["metrics.a UP"]), "INVALID_ORDER_BY"),
    (lambda s: s.search_experiments(filter_string="status = 'x'"), "INVALID_FILTER"),
]


def test_bad_input_reasons(store: SqlTrackingStore) -> None:
    for call, expected in BAD_INPUT_CASES:
        with pytest.raises(ServiceError) as caught:
            call(store)
        assert reason(caught) == expected


def test_invalid_metric_and_tag(store: SqlTrackingStore) -> None:
    run_id = store.create_run().info.run_id
    for metric in (Metric("", 1.0, 1), Metric("bad*key", 1.0, 1), Metric("k", 1.0, -5)):
        with pytest.raises(ServiceError) as caught:
            store.log_metric(run_id, metric)
        assert reason(caught) == "INVALID_METRIC"
    with pytest.raises(ServiceError) as caught:
        store.set_tag(run_id, "k", "v" * 8001)
    assert reason(caught) == "INVALID_TAG"


def test_artifact_manifest_rejects_file_directory_collisions(store: SqlTrackingStore) -> None:
    run_id = store.create_run().info.run_id
    store.record_artifact(run_id, "model/weights.bin", 3, "a" * 64)
    store.record_artifact(run_id, "model/weights.bin", 4, "b" * 64)  # overwrite: upsert
    assert store.get_artifact(run_id, "model/weights.bin") is not None
    assert [f.size for f in store.list_artifact_files(run_id, "model")] == [4]
    for clash in ("model", "model/weights.bin/x"):
        with pytest.raises(ServiceError) as caught:
            store.artifact_root_for_upload(run_id, clash)
        assert reason(caught) == "INVALID_ARTIFACT_PATH"
    # Prefix matching is exact: "Model" and "mode" are unrelated to "model".
    assert store.list_artifact_files(run_id, "Model") == []
    assert store.list_artifact_files(run_id, "mode") == []
