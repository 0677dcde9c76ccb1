"""SqlTrackingStore behaviour on every backend: the rules that must hold whatever the database.

The store is called as TrackingService calls it: with validated values, parsed filters and a row
limit and offset. What it refuses is what depends on the data (see test_tracking_service for the
input the domain refuses before the store is reached).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Mapping, Sequence

import pytest
import sqlalchemy as sa

from modelreg_server.context import CallContext
from modelreg_server.errors import ServiceError
from tracking_service.domain.entities import (
    LifecycleStage,
    Metric,
    MetricPoint,
    Param,
    Run,
    RunEventAction,
    RunStatus,
    ViewType,
)
from tracking_service.domain.filters import (
    EXPERIMENT_SEARCH,
    RUN_SEARCH,
    parse_filter,
    parse_order_by,
)
from tracking_service.store.models import RunRow
from tracking_service.store.sql import SqlTrackingStore

ACTIVE = ViewType.ACTIVE_ONLY
CTX = CallContext("alice", "req-store")
RUNS = RunRow.__table__


def reason(exc: pytest.ExceptionInfo[ServiceError]) -> str:
    return exc.value.reason


def new_run(
    store: SqlTrackingStore,
    experiment_id: int = 0,
    name: str = "run",
    *,
    start_time: int = 0,
    tags: Mapping[str, str] | None = None,
    parent_run_id: str | None = None,
) -> Run:
    return store.create_run(experiment_id, name, start_time, tags or {}, parent_run_id)


def log(
    store: SqlTrackingStore,
    run_id: str,
    metrics: Sequence[MetricPoint] = (),
    params: Mapping[str, str] | None = None,
    tags: Mapping[str, str] | None = None,
) -> None:
    store.log_batch(run_id, metrics, params or {}, tags or {})


def search(
    store: SqlTrackingStore,
    filter_text: str = "",
    order_by: Sequence[str] = (),
    *,
    experiment_ids: Sequence[int] = (0,),
    view: ViewType = ACTIVE,
    limit: int = 100,
    offset: int = 0,
) -> list[Run]:
    filters = parse_filter(filter_text, RUN_SEARCH)
    order = parse_order_by(list(order_by), RUN_SEARCH)
    return store.search_runs(experiment_ids, filters, order, view, limit, offset)


def experiment_names(
    store: SqlTrackingStore,
    filter_text: str = "",
    order_by: Sequence[str] = (),
    view: ViewType = ACTIVE,
    limit: int = 100,
    offset: int = 0,
) -> list[str]:
    filters = parse_filter(filter_text, EXPERIMENT_SEARCH)
    order = parse_order_by(list(order_by), EXPERIMENT_SEARCH)
    return [e.name for e in store.search_experiments(filters, order, view, limit, offset)]


def history(store: SqlTrackingStore, run_id: str, key: str) -> list[Metric]:
    return store.get_metric_history(run_id, key, limit=100_000, offset=0)


def test_default_experiment_exists_once(store: SqlTrackingStore) -> None:
    store.ensure_default_experiment()
    default = store.get_experiment(0)
    assert (default.experiment_id, default.name) == ("0", "Default")
    assert default.artifact_location.endswith("/artifacts/0")
    assert store.get_experiment_by_name("Default").experiment_id == "0"
    assert experiment_names(store) == ["Default"]


def test_experiment_ids_count_up_and_names_are_unique(store: SqlTrackingStore) -> None:
    first = store.create_experiment("first", "", {"team": "a"})
    second = store.create_experiment("second", "", {})
    assert (first.experiment_id, second.experiment_id) == ("1", "2")
    assert first.artifact_location.endswith("/artifacts/1")
    assert store.get_experiment(1).tags == {"team": "a"}
    assert store.create_experiment("elsewhere", "s3://bucket/exp", {}).artifact_location == "s3://bucket/exp"
    with pytest.raises(ServiceError) as caught:
        store.create_experiment("first", "", {})
    assert reason(caught) == "EXPERIMENT_ALREADY_EXISTS"
    with pytest.raises(ServiceError) as caught:
        store.rename_experiment(2, "first")
    assert reason(caught) == "EXPERIMENT_ALREADY_EXISTS"
    # Names are case-sensitive on every backend (MySQL is not, by default).
    assert store.create_experiment("FIRST", "", {}).name == "FIRST"


def test_run_gets_artifact_uri_and_parent(store: SqlTrackingStore) -> None:
    parent = new_run(store, name="parent", start_time=1234)
    child = new_run(store, name="child", tags={"k": "v"}, parent_run_id=parent.info.run_id)
    assert len(parent.info.run_id) == 32
    assert (parent.info.run_name, parent.info.start_time) == ("parent", 1234)
    assert parent.info.status is RunStatus.RUNNING
    assert child.info.start_time > 1_600_000_000_000  # 0 means now
    assert child.info.artifact_uri.endswith(f"/0/{child.info.run_id}/artifacts")
    fetched = store.get_run(child.info.run_id)
    assert fetched.info.parent_run_id == parent.info.run_id
    assert fetched.data.tags == {"k": "v"}
    with pytest.raises(ServiceError) as caught:
        new_run(store, parent_run_id="f" * 32)
    assert reason(caught) == "PARENT_RUN_NOT_FOUND"
    with pytest.raises(ServiceError) as caught:
        new_run(store, 999)
    assert reason(caught) == "EXPERIMENT_NOT_FOUND"


def test_params_are_immutable(store: SqlTrackingStore) -> None:
    run_id = new_run(store).info.run_id
    log(store, run_id, params={"alpha": "0.5"})
    log(store, run_id, params={"alpha": "0.5"})  # same value: no-op
    with pytest.raises(ServiceError) as caught:
        log(store, run_id, params={"alpha": "0.7"})
    assert reason(caught) == "PARAM_VALUE_CONFLICT"
    assert caught.value.metadata["key"] == "alpha"
    # Case matters: "Alpha" is another key, "0.5" vs "0.50" another value.
    log(store, run_id, params={"Alpha": "x"})
    assert store.get_run(run_id).data.params == (Param("Alpha", "x"), Param("alpha", "0.5"))


def test_log_batch_is_atomic(store: SqlTrackingStore) -> None:
    run_id = new_run(store).info.run_id
    log(store, run_id, params={"fixed": "1"})
    with pytest.raises(ServiceError) as caught:
        log(store, run_id, [Metric("loss", 1.0, 10, 0)], {"new": "x", "fixed": "2"}, {"t": "v"})
    assert reason(caught) == "PARAM_VALUE_CONFLICT"
    run = store.get_run(run_id)
    assert run.data.params == (Param("fixed", "1"),)
    assert run.data.metrics == () and run.data.tags == {}
    assert history(store, run_id, "loss") == []


def test_metric_values_round_trip(store: SqlTrackingStore) -> None:
    # One database per backend for all values: creating databases is what makes these tests slow.
    for value in (math.nan, math.inf, -math.inf, 0.0, -1.5, 1e308, -1e-308, 5e-324):
        run_id = new_run(store).info.run_id
        log(store, run_id, [Metric("m", value, 1000, 3)])
        (latest,) = store.get_run(run_id).data.metrics
        (point,) = history(store, run_id, "m")
        for got in (latest.value, point.value):
            assert math.isnan(got) if math.isnan(value) else got == value, (value, got)
        assert (point.timestamp, point.step) == (1000, 3)


def test_latest_metric_follows_step_then_timestamp_then_value(store: SqlTrackingStore) -> None:
    run_id = new_run(store).info.run_id

    def latest() -> Metric:
        return next(m for m in store.get_run(run_id).data.metrics if m.key == "m")

    log(store, run_id, [Metric("m", 5.0, 100, 2)])
    log(store, run_id, [Metric("m", 9.0, 999, 1)])  # older step loses despite later timestamp
    assert latest() == Metric("m", 5.0, 100, 2)
    log(store, run_id, [Metric("m", 1.0, 101, 2)])  # same step, later timestamp wins
    assert latest() == Metric("m", 1.0, 101, 2)
    log(store, run_id, [Metric("m", 0.5, 101, 2)])  # full tie but smaller value loses
    assert latest() == Metric("m", 1.0, 101, 2)
    log(store, run_id, [Metric("m", 7.0, 50, 3), Metric("m", 3.0, 40, 3), Metric("m", 8.0, 50, 3)])
    assert latest() == Metric("m", 8.0, 50, 3)
    log(store, run_id, [Metric("m", 2.0, 1, 4), Metric("x", 2.0, 1, 0)])
    assert latest() == Metric("m", 2.0, 1, 4)
    points = history(store, run_id, "m")
    assert [(m.step, m.timestamp) for m in points] == sorted((m.step, m.timestamp) for m in points)
    assert len(points) == 8


def test_metric_timestamp_zero_means_now(store: SqlTrackingStore) -> None:
    run_id = new_run(store).info.run_id
    log(store, run_id, [Metric("m", 1.0, 0)])
    assert store.get_run(run_id).data.metrics[0].timestamp > 1_600_000_000_000


def test_metric_history_limit_and_offset(store: SqlTrackingStore) -> None:
    run_id = new_run(store).info.run_id
    log(store, run_id, [Metric("m", float(i), 1000 + i, i) for i in range(25)])
    window = store.get_metric_history(run_id, "m", limit=11, offset=10)
    assert [m.value for m in window] == [float(i) for i in range(10, 21)]
    assert [m.value for m in store.get_metric_history(run_id, "m", limit=11, offset=20)] == [
        float(i) for i in range(20, 25)
    ]
    assert store.get_metric_history(run_id, "absent", limit=10, offset=0) == []
    with pytest.raises(ServiceError) as caught:
        store.get_metric_history("0" * 32, "m", limit=10, offset=0)
    assert reason(caught) == "RUN_NOT_FOUND"


def test_deleted_run_rejects_writes_and_restores(store: SqlTrackingStore) -> None:
    run_id = new_run(store).info.run_id
    store.delete_run(run_id, CTX)
    assert store.get_run(run_id).info.lifecycle_stage is LifecycleStage.DELETED
    for write in (
        lambda: log(store, run_id, params={"a": "1"}),
        lambda: log(store, run_id, [Metric("a", 1.0, 1)]),
        lambda: log(store, run_id, tags={"a": "1"}),
        lambda: store.update_run(run_id, RunStatus.FINISHED, None, None, CTX),
        lambda: store.artifact_root_for_upload(run_id, "f"),
    ):
        with pytest.raises(ServiceError) as caught:
            write()
        assert reason(caught) == "RUN_DELETED"
    assert search(store) == []
    assert [r.info.run_id for r in search(store, view=ViewType.DELETED_ONLY)] == [run_id]
    store.restore_run(run_id, CTX)
    log(store, run_id, tags={"a": "1"})
    assert store.get_run(run_id).info.lifecycle_stage is LifecycleStage.ACTIVE


def test_update_run_sets_the_fields_given(store: SqlTrackingStore) -> None:
    run_id = new_run(store, name="before").info.run_id
    info = store.update_run(run_id, RunStatus.FINISHED, 9999, None, CTX)
    assert (info.status, info.end_time, info.run_name) == (RunStatus.FINISHED, 9999, "before")
    info = store.update_run(run_id, None, None, "after", CTX)
    assert (info.status, info.end_time, info.run_name) == (RunStatus.FINISHED, 9999, "after")


def test_experiment_delete_hides_its_runs_and_restore_brings_back_only_those(store: SqlTrackingStore) -> None:
    experiment_id = int(store.create_experiment("e", "", {}).experiment_id)
    kept = new_run(store, experiment_id).info.run_id
    deleted_before = new_run(store, experiment_id).info.run_id
    store.delete_run(deleted_before, CTX)
    store.delete_experiment(experiment_id, CTX)
    assert store.get_experiment(experiment_id).lifecycle_stage is LifecycleStage.DELETED
    assert search(store, experiment_ids=[experiment_id]) == []
    assert experiment_names(store, view=ViewType.DELETED_ONLY) == ["e"]
    for write, expected in (
        (lambda: new_run(store, experiment_id), "EXPERIMENT_DELETED"),
        (lambda: store.set_experiment_tag(experiment_id, "k", "v"), "EXPERIMENT_DELETED"),
        (lambda: store.create_experiment("e", "", {}), "EXPERIMENT_ALREADY_EXISTS"),  # still holds its name
    ):
        with pytest.raises(ServiceError) as caught:
            write()
        assert reason(caught) == expected
    store.restore_experiment(experiment_id, CTX)
    assert [r.info.run_id for r in search(store, experiment_ids=[experiment_id])] == [kept]
    assert store.get_run(deleted_before).info.lifecycle_stage is LifecycleStage.DELETED


def run_events(store: SqlTrackingStore, after: int = 0) -> list[tuple[int, str, RunEventAction]]:
    events, _head = store.list_run_events([], "", [], after, 1_000)
    return [(event.position, event.run_id, event.action) for event in events]


def test_lifecycle_changes_are_logged_in_order_once_each(store: SqlTrackingStore) -> None:
    experiment_id = int(store.create_experiment("events", "", {}).experiment_id)
    first, second, third = (new_run(store, experiment_id).info.run_id for _ in range(3))
    store.update_run(first, RunStatus.RUNNING, None, "renamed", CTX)  # not a lifecycle event
    store.update_run(first, RunStatus.FINISHED, 10, None, CTX)
    store.update_run(first, RunStatus.FINISHED, 11, None, CTX)  # already finished: nothing new
    store.update_run(second, RunStatus.FAILED, None, None, CTX)
    store.delete_run(third, CTX)
    store.delete_run(third, CTX)  # already deleted
    store.delete_experiment(experiment_id, CTX)  # deletes first and second with it
    store.restore_experiment(experiment_id, CTX)  # brings back those two, not third
    store.restore_run(third, CTX)
    store.restore_run(third, CTX)  # already live
    with_it = sorted([first, second])
    assert [(run, action) for _, run, action in run_events(store)] == [
        (first, RunEventAction.FINISHED),
        (second, RunEventAction.FAILED),
        (third, RunEventAction.DELETED),
        *[(run, RunEventAction.DELETED) for run in with_it],
        *[(run, RunEventAction.RESTORED) for run in with_it],
        (third, RunEventAction.RESTORED),
    ]
    positions = [position for position, _, _ in run_events(store)]
    assert positions == list(range(positions[0], positions[0] + 8))
    assert run_events(store, positions[4]) == run_events(store)[5:]
    events, head = store.list_run_events([experiment_id], third, [RunEventAction.RESTORED], 0, 10)
    assert [(event.action, event.actor, event.request_id) for event in events] == [
        (RunEventAction.RESTORED, "alice", "req-store")
    ]
    assert head == positions[-1]


def test_a_failed_write_logs_nothing(store: SqlTrackingStore) -> None:
    run_id = new_run(store).info.run_id
    store.delete_run(run_id, CTX)
    before = run_events(store)
    with pytest.raises(ServiceError):
        store.update_run(run_id, RunStatus.FINISHED, None, None, CTX)
    assert run_events(store) == before


def test_a_later_writer_cannot_become_visible_before_an_earlier_one(store: SqlTrackingStore) -> None:
    """A writer holding positions blocks the next writer's until it commits: a reader taking
    "everything after the last position I saw" can never see position n+1 while n is in flight
    (with autoincrement ids, the second commit would be visible first on PostgreSQL and MySQL)."""
    early, late = new_run(store).info.run_id, new_run(store).info.run_id
    _, start = store.list_run_events([], "", [], 0, 1)
    late_done = threading.Event()
    with store._sessions.begin() as session:  # the early writer, kept open
        store._record_run_events(
            session,
            RunEventAction.DELETED,
            CTX,
            sa.select(RUNS.c.run_id, RUNS.c.experiment_id).where(RUNS.c.run_id == early),
        )

        def write_late() -> None:
            store.delete_run(late, CTX)
            late_done.set()

        writer = threading.Thread(target=write_late)
        writer.start()
        assert not late_done.wait(1.0), "the later writer committed while an earlier one held its position"
        assert run_events(store, start) == []
    writer.join()
    assert run_events(store, start) == [
        (start + 1, early, RunEventAction.DELETED),
        (start + 2, late, RunEventAction.DELETED),
    ]


def test_tags_set_replace_delete(store: SqlTrackingStore) -> None:
    run_id = new_run(store).info.run_id
    log(store, run_id, tags={"k": "1"})
    log(store, run_id, tags={"k": "2"})
    assert store.get_run(run_id).data.tags == {"k": "2"}
    store.delete_tag(run_id, "k")
    with pytest.raises(ServiceError) as caught:
        store.delete_tag(run_id, "k")
    assert reason(caught) == "TAG_NOT_FOUND"
    store.set_experiment_tag(0, "owner", "me")
    store.set_experiment_tag(0, "owner", "you")
    assert store.get_experiment(0).tags == {"owner": "you"}
    store.delete_experiment_tag(0, "owner")
    with pytest.raises(ServiceError) as caught:
        store.delete_experiment_tag(0, "owner")
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
        run_id = new_run(store, name=name, start_time=start).info.run_id
        log(
            store,
            run_id,
            [Metric("rmse", rmse, 1, 0)] if rmse is not None else [],
            {"alpha": alpha} if alpha is not None else {},
            {"team": team} if team is not None else {},
        )
        ids[name] = run_id
    store.update_run(ids["r3"], RunStatus.FINISHED, 4500, None, CTX)
    return ids


def _names(store: SqlTrackingStore, filter_text: str = "", order_by: tuple[str, ...] = ()) -> list[str]:
    return [r.info.run_name for r in search(store, filter_text, order_by)]


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
    for filter_text, expected in FILTER_CASES:
        assert _names(store, filter_text) == expected, filter_text


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
    for filter_text, order_by, expected in FILTERED_ORDER_CASES:
        assert _names(store, filter_text, order_by) == expected, (filter_text, order_by)


def test_search_runs_limit_and_offset_are_deterministic(store: SqlTrackingStore) -> None:
    created = {new_run(store, start_time=1000).info.run_id for _ in range(7)}  # all tie on start_time
    windows = [[r.info.run_id for r in search(store, limit=3, offset=offset)] for offset in (0, 3, 6)]
    assert [len(w) for w in windows] == [3, 3, 1]
    assert [run_id for window in windows for run_id in window] == sorted(created)  # ties by run id
    assert search(store, limit=3, offset=7) == []
    assert search(store, experiment_ids=[1]) == []
    assert len(search(store, experiment_ids=[])) == 7  # no ids: every experiment


def test_search_loads_each_runs_data(store: SqlTrackingStore, runs: dict[str, str]) -> None:
    found = {r.info.run_name: r.data for r in search(store, "params.alpha IN ('0.1', '0.2')")}
    assert found["r0"].params == (Param("alpha", "0.1"),) and found["r0"].tags == {"team": "vision"}
    assert found["r1"].metrics == (Metric("rmse", 0.5, 1, 0),)


def test_search_experiments(store: SqlTrackingStore) -> None:
    store.create_experiment("exp-a", "", {"team": "x"})
    store.create_experiment("exp-b", "", {})
    store.create_experiment("other", "", {})
    assert experiment_names(store, "name LIKE 'exp-%'", ["name DESC"]) == ["exp-b", "exp-a"]
    assert experiment_names(store, "tags.team = 'x'") == ["exp-a"]
    assert experiment_names(store, "name ILIKE 'EXP-A'") == ["exp-a"]
    assert experiment_names(store, "name LIKE 'EXP-%'") == []
    assert experiment_names(store, order_by=["experiment_id"], limit=2, offset=2) == ["exp-b", "other"]
    assert experiment_names(store, order_by=["experiment_id"], limit=2, offset=4) == []


MISSING_CASES: list[tuple[Callable[[SqlTrackingStore], object], str]] = [
    (lambda s: s.get_run("0" * 32), "RUN_NOT_FOUND"),
    (lambda s: s.delete_run("0" * 32, CTX), "RUN_NOT_FOUND"),
    (lambda s: log(s, "0" * 32, params={"a": "1"}), "RUN_NOT_FOUND"),
    (lambda s: s.artifact_root("0" * 32), "RUN_NOT_FOUND"),
    (lambda s: s.list_artifact_files("0" * 32, ""), "RUN_NOT_FOUND"),
    (lambda s: s.get_experiment(42), "EXPERIMENT_NOT_FOUND"),
    (lambda s: s.get_experiment_by_name("nope"), "EXPERIMENT_NOT_FOUND"),
    (lambda s: s.rename_experiment(42, "x"), "EXPERIMENT_NOT_FOUND"),
    (lambda s: s.delete_experiment(42, CTX), "EXPERIMENT_NOT_FOUND"),
]


def test_missing_things_are_not_found(store: SqlTrackingStore) -> None:
    for call, expected in MISSING_CASES:
        with pytest.raises(ServiceError) as caught:
            call(store)
        assert reason(caught) == expected


def test_artifact_manifest_rejects_file_directory_collisions(store: SqlTrackingStore) -> None:
    run_id = new_run(store).info.run_id
    published: list[str] = []

    def publisher(path: str) -> Callable[[], None]:
        return lambda: published.append(path)

    store.record_artifact(run_id, "model/weights.bin", 3, "a" * 64, publish=publisher("1"))
    store.record_artifact(run_id, "model/weights.bin", 4, "b" * 64, publish=publisher("2"))  # upsert
    assert store.get_artifact(run_id, "model/weights.bin") is not None
    assert [f.size for f in store.list_artifact_files(run_id, "model")] == [4]
    for clash in ("model", "model/weights.bin/x"):
        with pytest.raises(ServiceError) as caught:
            store.artifact_root_for_upload(run_id, clash)
        assert reason(caught) == "INVALID_ARTIFACT_PATH"
        # Checked again under the run's lock, before anything is published.
        with pytest.raises(ServiceError) as caught:
            store.record_artifact(run_id, clash, 1, "c" * 64, publish=publisher(clash))
        assert reason(caught) == "INVALID_ARTIFACT_PATH"
    assert published == ["1", "2"]
    # Prefix matching is exact: "Model" and "mode" are unrelated to "model".
    assert store.list_artifact_files(run_id, "Model") == []
    assert store.list_artifact_files(run_id, "mode") == []
