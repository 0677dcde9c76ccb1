"""Retries that cannot duplicate, through real servers and the real client on every backend.

- A tracking server killed (SIGKILL) and started again on the same port and database while a
  training loop logs: the loop carries on, and the run ends FINISHED with every point once.
- A lost answer (tests.proxy breaks the connection after the server applied a write, before its
  answer arrives): the client retries the write with its idempotency key, and the services apply
  it once (one run, one point, one version, one history event).
- One key sent with two different requests, keys that are not tokens, concurrent duplicates, a
  LogMetrics stream sent twice, and keys past their retention.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import pytest
import sqlalchemy as sa

import modelreg
from modelreg import RegistryClient, TrackingClient, config, wire
from modelreg.entities import Metric, Param, RunTag
from modelreg.exceptions import InvalidArgument, ModelregError, from_rpc_error
from modelreg.tracking.v1 import tracking_pb2 as pb
from modelreg.tracking.v1 import tracking_pb2_grpc as pb_grpc
from modelreg_server.streams import StreamLimits
from tests.conftest import Backend
from tests.integration.client.conftest import free_port
from tests.integration.tracking.conftest import running
from tests.integration.tracking.test_tracking_stream_limits import settings_for, silent_uploads
from tests.proxy import DroppingProxy
from tests.servers import running_registry, running_tracking
from tracking_service.store.models import APPLIED_WRITES
from tracking_service.store.sql import SqlTrackingStore

ROOT = Path(__file__).resolve().parents[3]
STEPS = 200


# "key" is a reserved word on MySQL/MariaDB: quoted as each backend quotes it.
_METRICS_OF_KEY = "SELECT COUNT(*) FROM metrics WHERE run_id = :r AND {key} = :k"


def _count(url: str, sql: str, **params: object) -> int:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    sql = sql.replace("{key}", engine.dialect.identifier_preparer.quote_identifier("key"))
    try:
        with engine.connect() as connection:
            return int(connection.execute(sa.text(sql), params).scalar_one())
    finally:
        engine.dispose()


# -------------------------------------------------------------------- a restart during training


class TrackingProcess:
    """``python -m tracking_service serve`` on a fixed port, killed and started again at will."""

    def __init__(self, tmp_path: Path, database_url: str) -> None:
        self.port = free_port()
        self.target = f"127.0.0.1:{self.port}"
        base = {key: value for key, value in os.environ.items() if not key.startswith("MODELREG_")}
        self._env = {
            **base,
            "MODELREG_TRACKING_PORT": str(self.port),
            "MODELREG_TRACKING_DATABASE_URL": database_url,
            "MODELREG_ARTIFACT_ROOT": (tmp_path / "artifacts").as_uri(),
            "MODELREG_LOG_LEVEL": "WARNING",
        }
        self._cwd = tmp_path
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self._process = subprocess.Popen(
            [sys.executable, "-m", "tracking_service", "serve"], env=self._env, cwd=self._cwd
        )

    def kill(self) -> None:
        assert self._process is not None
        self._process.send_signal(signal.SIGKILL)
        self._process.wait()

    def wait_ready(self) -> None:
        channel = grpc.insecure_channel(self.target)
        try:
            grpc.channel_ready_future(channel).result(timeout=30)
        finally:
            channel.close()

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self.kill()


@pytest.fixture
def tracking_process(tmp_path: Path, backend: Backend) -> Iterator[TrackingProcess]:
    process = TrackingProcess(tmp_path, backend.url)
    process.start()
    try:
        process.wait_ready()
        yield process
    finally:
        process.stop()


def _restart_at(step: int, process: TrackingProcess, down_seconds: float) -> Callable[[int], None]:
    """Called with each step: at ``step``, kills the server and starts it again after ``down_seconds``
    on another thread, while the loop goes on."""

    def restart() -> None:
        process.kill()
        time.sleep(down_seconds)
        process.start()

    def on_step(current: int) -> None:
        if current == step:
            threading.Thread(target=restart, daemon=True).start()

    return on_step


def _train_with_client(target: str, on_step: Callable[[int], None]) -> tuple[str, int]:
    with TrackingClient(target) as client:
        run_id = client.create_run("0", run_name="restarted").info.run_id
        client.log_param(run_id, "lr", 0.1)
        for step in range(STEPS):
            on_step(step)
            client.log_metric(run_id, "loss", 1.0 / (step + 1), step=step)
            time.sleep(0.005)
        client.set_terminated(run_id)
        return run_id, client._rpc.retried


def _train_with_fluent(target: str, on_step: Callable[[int], None]) -> tuple[str, int]:
    modelreg.set_tracking_uri(target)
    try:
        with modelreg.start_run(run_name="restarted") as run:
            modelreg.log_param("lr", 0.1)
            for step in range(STEPS):
                on_step(step)
                modelreg.log_metric("loss", 1.0 / (step + 1), step=step)
                time.sleep(0.005)
        return run.info.run_id, modelreg.fluent.tracking_client()._rpc.retried
    finally:
        config.set_default_uri("tracking", None)


@pytest.mark.parametrize("train", [_train_with_client, _train_with_fluent], ids=["client", "fluent"])
def test_training_survives_a_tracking_restart(
    tracking_process: TrackingProcess,
    backend: Backend,
    train: Callable[[str, Callable[[int], None]], tuple[str, int]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    started = time.monotonic()
    run_id, retried = train(tracking_process.target, _restart_at(60, tracking_process, 2.0))
    elapsed = time.monotonic() - started
    with TrackingClient(tracking_process.target) as client:
        run = client.get_run(run_id)
        history = list(client.get_metric_history(run_id, "loss"))
    assert run.info.status == "FINISHED"
    assert run.data.params == {"lr": "0.1"}
    assert [m.step for m in history] == list(range(STEPS)), "every step exactly once"
    assert [m.value for m in history] == [1.0 / (step + 1) for step in range(STEPS)]
    rows = _count(backend.url, "SELECT COUNT(*) FROM metrics WHERE run_id = :run", run=run_id)
    assert rows == STEPS
    assert retried >= 1, "the restart was ridden out by retries"
    assert elapsed > 2.0, "the loop waited for the server to come back"
    with capsys.disabled():
        print(f"\n[restart {backend.name}] {STEPS} steps, {retried} retries, {rows} rows, {elapsed:.1f} s")


# -------------------------------------------------------------------- lost answers


@pytest.fixture
def tracking_proxy(tmp_path: Path, backend: Backend) -> Iterator[tuple[DroppingProxy, str]]:
    with running_tracking(tmp_path, backend.url) as (target, _), DroppingProxy(target) as proxy:
        yield proxy, target


def _lost(proxy: DroppingProxy, call: Callable[[], object]) -> object:
    """``call()`` with its first answer lost: the server applied it, the client saw the connection break."""
    dropped = proxy.dropped
    proxy.drop_next_answer()
    result = call()
    assert proxy.dropped == dropped + 1, "the answer was dropped"
    return result


def test_lost_tracking_answers_are_applied_once(
    tracking_proxy: tuple[DroppingProxy, str], backend: Backend
) -> None:
    proxy, _ = tracking_proxy
    url = backend.url
    with TrackingClient(proxy.target) as client:
        client.search_experiments()  # the connection is up: the next answer is the write's
        experiment = _lost(proxy, lambda: client.create_experiment("lost-answers"))
        assert isinstance(experiment, modelreg.entities.Experiment)
        experiment_id = experiment.experiment_id
        run = _lost(proxy, lambda: client.create_run(experiment_id, run_name="once"))
        assert isinstance(run, modelreg.entities.Run)
        run_id = run.info.run_id
        _lost(proxy, lambda: client.log_metric(run_id, "loss", 0.5, step=1))
        _lost(proxy, lambda: client.log_param(run_id, "lr", 0.1))
        _lost(proxy, lambda: client.set_tag(run_id, "t", "v"))
        batch = [Metric("acc", 0.9, 1, step) for step in range(3)]
        _lost(
            proxy,
            lambda: client.log_batch(
                run_id, metrics=batch, params=[Param("p", "1")], tags=[RunTag("b", "1")]
            ),
        )
        points = [Metric("streamed", float(i), 1, i) for i in range(5)]
        stored = _lost(proxy, lambda: client.log_metrics_stream([(run_id, points[:2]), (run_id, points[2:])]))
        assert stored == 5
        info = _lost(proxy, lambda: client.set_terminated(run_id, "FINISHED"))
        assert isinstance(info, modelreg.entities.RunInfo) and info.status == "FINISHED"
        granted = _lost(proxy, lambda: client.set_experiment_permission(experiment_id, "EDIT", user="bob"))
        assert isinstance(granted, modelreg.entities.Permission) and granted.level == "EDIT"
        second = client.create_run(experiment_id)
        _lost(proxy, lambda: client.delete_run(second.info.run_id))
        retried = client._rpc.retried
        final = client.get_run(run_id)
    assert proxy.dropped == 10
    assert retried >= 10
    assert _count(url, "SELECT COUNT(*) FROM experiments WHERE name = 'lost-answers'") == 1
    assert _count(url, "SELECT COUNT(*) FROM runs WHERE run_name = 'once'") == 1
    assert _count(url, _METRICS_OF_KEY, r=run_id, k="loss") == 1
    assert _count(url, _METRICS_OF_KEY, r=run_id, k="acc") == 3
    assert _count(url, _METRICS_OF_KEY, r=run_id, k="streamed") == 5
    assert _count(url, "SELECT COUNT(*) FROM experiment_permission_events WHERE subject_name = 'bob'") == 1
    assert final.info.status == "FINISHED"
    assert final.data.params == {"lr": "0.1", "p": "1"}
    assert {"t": "v", "b": "1"}.items() <= final.data.tags.items()


@pytest.fixture
def registry_proxy(
    tmp_path: Path, backend: Backend, database_url_factory: Callable[[str], str]
) -> Iterator[tuple[DroppingProxy, str]]:
    url = database_url_factory(backend.name)
    with (
        running_tracking(tmp_path) as (tracking, _),
        running_registry(tmp_path, tracking, url) as registry,
        DroppingProxy(registry) as proxy,
    ):
        yield proxy, url


def _registry_history(
    registry: RegistryClient, name: str, call: Callable[[Callable[[], object]], object]
) -> None:
    """A model's life, each write made through ``call``."""
    registry.search_registered_models()  # the connection is up: the next answer is the write's
    call(lambda: registry.create_registered_model(name, tags={"team": "a"}))
    versions = [call(lambda: registry.create_model_version(name, "s3://b/m")) for _ in range(2)]
    assert [v.version for v in versions if isinstance(v, modelreg.entities.ModelVersion)] == [1, 2]
    moved = call(lambda: registry.transition_model_version_stage(name, 1, "Production"))
    assert isinstance(moved, modelreg.entities.ModelVersion) and moved.current_stage == "Production"
    call(lambda: registry.transition_model_version_stage(name, 2, "Production"))
    rolled = call(lambda: registry.rollback_stage(name, "Production"))
    assert isinstance(rolled, modelreg.entities.RollbackResult)
    assert rolled.restored.version == 1
    assert rolled.archived is not None and rolled.archived.version == 2
    call(lambda: registry.set_registered_model_alias(name, "champion", 1))
    call(lambda: registry.set_registered_model_alias(name, "champion", 2))
    call(lambda: registry.delete_registered_model_alias(name, "champion"))
    call(lambda: registry.set_model_version_tag(name, 1, "k", "v"))
    call(lambda: registry.delete_model_version(name, 2))
    granted = call(lambda: registry.set_registered_model_permission(name, "EDIT", user="bob"))
    assert isinstance(granted, modelreg.entities.Permission) and granted.level == "EDIT"
    protection = call(lambda: registry.set_registered_model_protection(name, aliases=["prod"]))
    assert isinstance(protection, modelreg.entities.ModelProtection) and protection.aliases == ("prod",)


def test_lost_registry_answers_are_applied_once(
    registry_proxy: tuple[DroppingProxy, str], capsys: pytest.CaptureFixture[str]
) -> None:
    """The same history twice: answers lost for every write of "lost", none for "control"."""
    proxy, url = registry_proxy
    with RegistryClient(proxy.target) as registry:
        _registry_history(registry, "control", lambda call: call())
        before = registry._rpc.retried
        _registry_history(registry, "lost", lambda call: _lost(proxy, call))
        retried = registry._rpc.retried - before

    def history(name: str) -> list[tuple[str, int, str, str]]:
        engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
        with engine.connect() as connection:
            rows = connection.execute(
                sa.text(
                    "SELECT action, version, from_value, to_value FROM model_events "
                    "WHERE name = :name ORDER BY id"
                ),
                {"name": name},
            ).all()
        engine.dispose()
        return [tuple(row) for row in rows]  # type: ignore[misc]

    lost, control = history("lost"), history("control")
    assert proxy.dropped == 13
    assert retried >= 13
    assert lost == control, "one history event per write"
    # one event per write (a transition that archives the holder records both moves)
    assert " ".join(event[0] for event in lost) == (
        "MODEL_CREATED VERSION_CREATED VERSION_CREATED STAGE_TRANSITIONED STAGE_TRANSITIONED"
        " STAGE_TRANSITIONED STAGE_TRANSITIONED STAGE_TRANSITIONED STAGE_ROLLED_BACK ALIAS_SET"
        " ALIAS_MOVED ALIAS_DELETED VERSION_TAG_SET VERSION_DELETED PERMISSION_SET PROTECTION_SET"
    )
    for table in ("model_versions", "model_version_tags"):
        counts = [
            _count(
                url,
                f"SELECT COUNT(*) FROM {table} t JOIN registered_models m ON m.id = "
                + (
                    "t.model_id"
                    if table == "model_versions"
                    else "(SELECT v.model_id FROM model_versions v WHERE v.id = t.version_id)"
                )
                + " WHERE m.name = :n",
                n=name,
            )
            for name in ("lost", "control")
        ]
        assert counts == [1, 1], table
    assert _count(url, "SELECT next_version FROM registered_models WHERE name = 'lost'") == 3, (
        "no number lost"
    )
    with capsys.disabled():
        print(
            f"\n[lost registry answers] {proxy.dropped} dropped, {retried} retries, {len(lost)} events as control"
        )


# -------------------------------------------------------------------- keys on the wire


@pytest.fixture
def tracking(tmp_path: Path, backend: Backend) -> Iterator[str]:
    with running_tracking(tmp_path, backend.url) as (target, _):
        yield target


@pytest.fixture
def stub(tracking: str) -> Iterator[pb_grpc.TrackingServiceStub]:
    channel = grpc.insecure_channel(tracking)
    yield pb_grpc.TrackingServiceStub(channel)
    channel.close()


def _keyed(key: str) -> tuple[tuple[str, str], ...]:
    return ((wire.IDEMPOTENCY_HEADER, key),)


def _error(call: Callable[[], object]) -> ModelregError:
    with pytest.raises(grpc.RpcError) as caught:
        call()
    return from_rpc_error(caught.value)


def _new_run(stub: pb_grpc.TrackingServiceStub) -> str:
    return str(stub.CreateRun(pb.CreateRunRequest(experiment_id="0")).run.info.run_id)


def test_a_key_reused_for_another_request_is_refused(
    stub: pb_grpc.TrackingServiceStub, backend: Backend
) -> None:
    run_id = _new_run(stub)

    def log(value: float) -> object:
        metric = pb.Metric(key="m", value=value, timestamp=1, step=0)
        return stub.LogMetric(pb.LogMetricRequest(run_id=run_id, metric=metric), metadata=_keyed("key-1"))

    log(1.0)
    log(1.0)  # the same request again: answered, not applied
    error = _error(lambda: log(2.0))
    assert isinstance(error, InvalidArgument)
    assert error.reason == "IDEMPOTENCY_KEY_REUSED"
    assert error.metadata == {"field": wire.IDEMPOTENCY_HEADER}
    assert wire.IDEMPOTENCY_HEADER in error.message
    # Another method under the same key is another request too.
    error = _error(
        lambda: stub.SetTag(pb.SetTagRequest(run_id=run_id, key="k", value="v"), metadata=_keyed("key-1"))
    )
    assert error.reason == "IDEMPOTENCY_KEY_REUSED"
    assert _count(backend.url, "SELECT COUNT(*) FROM metrics WHERE run_id = :r", r=run_id) == 1
    assert _count(backend.url, "SELECT COUNT(*) FROM run_tags WHERE run_id = :r", r=run_id) == 0


@pytest.mark.parametrize(
    ("key", "why"), [("has space", "visible ASCII"), ("", "visible ASCII"), ("k" * 129, "limit is 128")]
)
def test_a_key_that_is_not_a_token_is_refused(stub: pb_grpc.TrackingServiceStub, key: str, why: str) -> None:
    request = pb.CreateRunRequest(experiment_id="0")
    error = _error(lambda: stub.CreateRun(request, metadata=_keyed(key)))
    assert (error.code, error.reason) == ("INVALID_ARGUMENT", "INVALID_METADATA")
    assert error.metadata == {"field": wire.IDEMPOTENCY_HEADER}
    assert why in error.message


def test_concurrent_duplicates_apply_once(stub: pb_grpc.TrackingServiceStub, backend: Backend) -> None:
    """Eight attempts of one CreateRun at once (a retry arriving while the first still runs): one run,
    and every attempt answers it."""
    request = pb.CreateRunRequest(experiment_id="0", run_name="raced")
    start = threading.Barrier(8)

    def attempt(_: int) -> str:
        start.wait()
        return str(stub.CreateRun(request, metadata=_keyed("raced-key")).run.info.run_id)

    with ThreadPoolExecutor(8) as pool:
        answers = set(pool.map(attempt, range(8)))
    assert len(answers) == 1
    assert _count(backend.url, "SELECT COUNT(*) FROM runs WHERE run_name = 'raced'") == 1


def test_concurrent_duplicates_of_a_failing_write_never_fail_internal(
    stub: pb_grpc.TrackingServiceStub, backend: Backend
) -> None:
    """Eight attempts at once of a write that fails (a param logged with another value): each
    attempt rolls its claim back with it, the next takes the key. Every answer is the write's own
    error or a retryable one, never INTERNAL, and nothing is applied."""
    run_id = _new_run(stub)
    stub.LogParam(pb.LogParamRequest(run_id=run_id, param=pb.Param(key="lr", value="0.1")))
    request = pb.LogParamRequest(run_id=run_id, param=pb.Param(key="lr", value="0.2"))
    start = threading.Barrier(8)

    def attempt(_: int) -> tuple[str, str]:
        start.wait()
        error = _error(lambda: stub.LogParam(request, metadata=_keyed("failing-key")))
        return error.code, error.reason

    with ThreadPoolExecutor(8) as pool:
        answers = set(pool.map(attempt, range(8)))
    assert answers <= {("INVALID_ARGUMENT", "PARAM_VALUE_CONFLICT"), ("UNAVAILABLE", "WRITE_IN_PROGRESS")}
    assert ("INVALID_ARGUMENT", "PARAM_VALUE_CONFLICT") in answers
    assert _count(backend.url, "SELECT COUNT(*) FROM applied_writes") == 0
    assert _count(backend.url, "SELECT COUNT(*) FROM params WHERE run_id = :r", r=run_id) == 1


def test_a_metric_stream_sent_again_stores_each_batch_once(
    stub: pb_grpc.TrackingServiceStub, backend: Backend
) -> None:
    run_id = _new_run(stub)
    batches = [
        pb.LogMetricsRequest(run_id=run_id, metrics=[pb.Metric(key="s", value=i, timestamp=1, step=i)])
        for i in range(3)
    ]
    first = stub.LogMetrics(iter(batches[:2]), metadata=_keyed("stream-1"))
    again = stub.LogMetrics(iter(batches), metadata=_keyed("stream-1"))  # a retry that got further
    assert (first.stored_count, again.stored_count) == (2, 3)
    assert _count(backend.url, "SELECT COUNT(*) FROM metrics WHERE run_id = :r", r=run_id) == 3
    changed = [batches[0], pb.LogMetricsRequest(run_id=run_id, metrics=[pb.Metric(key="s", value=9, step=1)])]
    error = _error(lambda: stub.LogMetrics(iter(changed), metadata=_keyed("stream-1")))
    assert error.reason == "IDEMPOTENCY_KEY_REUSED"
    assert _count(backend.url, "SELECT COUNT(*) FROM metrics WHERE run_id = :r", r=run_id) == 3


def test_keys_are_deleted_after_their_retention(tmp_path: Path, backend: Backend) -> None:
    engine = sa.create_engine(backend.url, poolclass=sa.pool.NullPool)
    with running_tracking(tmp_path, backend.url) as (target, _):
        channel = grpc.insecure_channel(target)
        stub = pb_grpc.TrackingServiceStub(channel)
        for key in ("old", "new"):
            stub.CreateRun(pb.CreateRunRequest(experiment_id="0"), metadata=_keyed(key))
        channel.close()
    with engine.begin() as connection:
        connection.execute(
            sa.update(APPLIED_WRITES).where(APPLIED_WRITES.c.key == "old").values(created_at=0)
        )
    store = SqlTrackingStore(engine, (tmp_path / "artifacts").as_uri())
    assert store.applied_writes.prune(retention_hours=1) == 1
    assert store.applied_writes.prune(retention_hours=1) == 0
    with engine.connect() as connection:
        keys = connection.execute(sa.select(APPLIED_WRITES.c.key)).scalars().all()
    engine.dispose()
    assert keys == ["new"]


def test_an_upload_refused_for_lack_of_a_stream_slot_is_sent_again(tmp_path: Path) -> None:
    """The only stream slot is taken: the upload is refused (TOO_MANY_STREAMS), then sent again
    whole from its file once the slot frees."""
    content = os.urandom(3 * 1024 * 1024 + 7)
    local = tmp_path / "model.bin"
    local.write_bytes(content)
    with running(settings_for(tmp_path, StreamLimits(max_streams=1))) as tracking:
        client = TrackingClient(tracking.target)
        run_id = client.create_run("0").info.run_id
        results: list[object] = []
        with silent_uploads(tracking.target, run_id, 1):
            uploading = threading.Thread(target=lambda: results.append(client.log_artifact(run_id, local)))
            uploading.start()
            time.sleep(1.0)
            assert client._rpc.retried >= 1, "refused while the slot is held"
        uploading.join(timeout=30)
        stored = client.stat_artifact(run_id, "model.bin")
        client.close()
    assert len(results) == 1
    assert stored.file_size == len(content)
