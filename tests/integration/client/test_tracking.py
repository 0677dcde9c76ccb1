"""TrackingClient and Client against the real tracking server: experiments, runs, search,
metrics, artifacts, errors and retries."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import pytest

import modelreg
from modelreg import Client, TrackingClient, fluent
from modelreg.entities import Metric, Param, RunTag
from modelreg.exceptions import AlreadyExists, DataLoss, InvalidArgument, NotFound, Unavailable
from modelreg.tracking_client import CHUNK_BYTES
from tests.servers import Services, running_services

from .conftest import free_port


def test_experiment_lifecycle(client: Client, unique: str) -> None:
    experiment_id = client.create_experiment(f"exp-{unique}", tags={"team": "ml"})
    experiment = client.get_experiment(experiment_id)
    assert (experiment.name, experiment.tags, experiment.lifecycle_stage) == (
        f"exp-{unique}",
        {"team": "ml"},
        "active",
    )
    assert client.get_experiment_by_name(f"exp-{unique}") == experiment
    assert client.get_experiment_by_name(f"missing-{unique}") is None

    client.rename_experiment(experiment_id, f"renamed-{unique}")
    client.set_experiment_tag(experiment_id, "stage", "dev")
    found = client.search_experiments(filter_string=f"name = 'renamed-{unique}'")
    assert [x.experiment_id for x in found] == [experiment_id]
    assert found[0].tags == {"team": "ml", "stage": "dev"}

    client.delete_experiment(experiment_id)
    assert client.search_experiments(filter_string=f"name = 'renamed-{unique}'") == []
    deleted = client.search_experiments(view_type="DELETED_ONLY", filter_string=f"name = 'renamed-{unique}'")
    assert [x.lifecycle_stage for x in deleted] == ["deleted"]
    client.restore_experiment(experiment_id)
    assert client.get_experiment(experiment_id).lifecycle_stage == "active"


def test_errors_carry_class_and_reason(client: Client, unique: str) -> None:
    client.create_experiment(f"dup-{unique}")
    with pytest.raises(AlreadyExists) as exists:
        client.create_experiment(f"dup-{unique}")
    assert exists.value.reason == "EXPERIMENT_ALREADY_EXISTS"

    with pytest.raises(NotFound) as missing:
        client.get_run("0" * 32)
    assert (missing.value.code, missing.value.reason) == ("NOT_FOUND", "RUN_NOT_FOUND")

    with pytest.raises(InvalidArgument) as bad_filter:
        client.search_runs(["0"], filter_string="metrics.rmse <<< 3")
    assert bad_filter.value.reason == "INVALID_FILTER"

    run = client.create_run("0")
    client.log_param(run.info.run_id, "alpha", 0.5)
    client.log_param(run.info.run_id, "alpha", 0.5)  # same value: a no-op
    with pytest.raises(InvalidArgument) as conflict:
        client.log_param(run.info.run_id, "alpha", 0.7)
    assert conflict.value.reason == "PARAM_VALUE_CONFLICT"


def test_runs_log_and_search(client: Client, unique: str) -> None:
    experiment_id = client.create_experiment(f"runs-{unique}")
    run_ids = []
    for i in range(5):
        run = client.create_run(experiment_id, run_name=f"r{i}", tags={"i": i})
        run_id = run.info.run_id
        client.log_param(run_id, "alpha", i / 10)
        client.log_metric(run_id, "rmse", float(i), step=1)
        client.set_tag(run_id, "team", "ml")
        client.log_batch(
            run_id,
            metrics=[Metric("r2", 1 - i / 10, 1_000, 0)],
            params=[Param("fit", "yes")],
            tags=[RunTag("k", "v")],
        )
        client.set_terminated(run_id)
        run_ids.append(run_id)

    run = client.get_run(run_ids[2])
    assert run.info.status == "FINISHED" and run.info.end_time is not None
    assert run.info.run_name == "r2"
    assert run.data.params == {"alpha": "0.2", "fit": "yes"}
    assert run.data.metrics == {"rmse": 2.0, "r2": 0.8}
    assert run.data.tags["team"] == "ml" and run.data.tags["k"] == "v"

    low = client.search_runs([experiment_id], "metrics.rmse < 2", order_by=["metrics.rmse ASC"])
    assert [r.info.run_id for r in low] == run_ids[:2]

    first = client.search_runs([experiment_id], max_results=3, order_by=["attributes.run_name ASC"])
    assert [r.info.run_name for r in first] == ["r0", "r1", "r2"]
    assert first.token is not None
    rest = client.search_runs([experiment_id], page_token=first.token, order_by=["attributes.run_name ASC"])
    assert [r.info.run_name for r in rest] == ["r3", "r4"] and rest.token is None

    client.delete_run(run_ids[0])
    assert len(client.search_runs([experiment_id])) == 4
    assert len(client.search_runs([experiment_id], run_view_type="ALL")) == 5


def test_metric_stream_and_history(services: Services) -> None:
    with TrackingClient(services.tracking) as tracking:
        run_id = tracking.create_run().info.run_id
        batches = [
            (run_id, [Metric("loss", float(s), 1_000 + s, s) for s in range(b * 1000, (b + 1) * 1000)])
            for b in range(3)
        ]
        assert tracking.log_metrics_stream(batches) == 3000
        history = list(tracking.get_metric_history(run_id, "loss"))
        assert [m.step for m in history] == list(range(3000))
        assert [m.value for m in history[:3]] == [0.0, 1.0, 2.0]
        assert len(list(tracking.get_metric_history(run_id, "loss", max_results=10))) == 10


def test_artifacts_round_trip(client: Client, model_dir: Path, tmp_path: Path) -> None:
    run_id = client.create_run("0").info.run_id
    progress: list[tuple[int, int]] = []
    client.log_artifacts(
        run_id, str(model_dir), "model", progress=lambda done, total: progress.append((done, total))
    )
    total = sum(p.stat().st_size for p in model_dir.rglob("*") if p.is_file())
    assert progress[-1] == (total, total)
    single = tmp_path / "notes.txt"
    single.write_text("hello")
    client.log_artifact(run_id, str(single))

    assert [(f.path, f.is_dir) for f in client.list_artifacts(run_id)] == [
        ("model", True),
        ("notes.txt", False),
    ]
    weights = client.tracking.stat_artifact(run_id, "model/sub/weights.bin")
    assert weights.sha256 == hashlib.sha256((model_dir / "sub" / "weights.bin").read_bytes()).hexdigest()
    recursive = client.tracking.list_artifacts(run_id, "model", recursive=True)
    assert [f.path for f in recursive] == ["model/MLmodel", "model/sub/weights.bin"]

    local = Path(client.download_artifacts(run_id, "model", str(tmp_path / "dl")))
    assert (local / "sub" / "weights.bin").read_bytes() == (model_dir / "sub" / "weights.bin").read_bytes()
    assert (local / "MLmodel").read_text() == "flavor: test\n"
    file_only = Path(client.download_artifacts(run_id, "notes.txt", str(tmp_path / "dl2")))
    assert file_only.read_text() == "hello"
    everything = Path(client.download_artifacts(run_id, "", str(tmp_path / "dl3")))
    assert sorted(p.relative_to(everything).as_posix() for p in everything.rglob("*") if p.is_file()) == [
        "model/MLmodel",
        "model/sub/weights.bin",
        "notes.txt",
    ]

    with pytest.raises(NotFound) as missing:
        client.download_artifacts(run_id, "nope.txt", str(tmp_path / "dl4"))
    assert missing.value.reason == "ARTIFACT_NOT_FOUND"


def test_expected_digest_is_enforced_by_the_server(client: Client, tmp_path: Path) -> None:
    run_id = client.create_run("0").info.run_id
    data = tmp_path / "data.bin"
    data.write_bytes(b"x" * 10)
    with pytest.raises(InvalidArgument) as mismatch:
        client.tracking.log_artifact(run_id, data, expected_sha256="0" * 64)
    assert mismatch.value.reason == "DIGEST_MISMATCH"
    assert client.list_artifacts(run_id) == []


def test_dead_target_raises_unavailable_once_the_retry_time_is_up(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELREG_RETRY_SECONDS", "1")
    dead = TrackingClient(f"127.0.0.1:{free_port()}", timeout=5)
    for call in (lambda: dead.get_run("0" * 32), dead.create_run):  # a read, then a write
        started = time.monotonic()
        with pytest.raises(Unavailable) as down:
            call()
        assert down.value.code == "UNAVAILABLE"
        assert time.monotonic() - started < 10, "gave up after MODELREG_RETRY_SECONDS, not the default 60 s"
    assert dead._rpc.retried >= 4
    dead.close()


def test_client_follows_set_tracking_uri(fluent_targets: Services) -> None:
    assert modelreg.get_tracking_uri() == fluent_targets.tracking
    assert Client().tracking_uri == fluent_targets.tracking


def test_fluent_calls_follow_a_changed_environment(
    services: Services, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The fluent API's cached clients never answer for a target that is no longer configured."""
    monkeypatch.setenv("MODELREG_TRACKING_URI", services.tracking)
    monkeypatch.setenv("MODELREG_REGISTRY_URI", services.registry)
    assert fluent.tracking_client().target == services.tracking
    assert fluent.registry_client().target == services.registry
    with running_services(tmp_path) as other:
        monkeypatch.setenv("MODELREG_TRACKING_URI", other.tracking)
        monkeypatch.setenv("MODELREG_REGISTRY_URI", other.registry)
        with modelreg.start_run() as run:
            pass
        assert Client(other.tracking, other.registry).get_run(run.info.run_id).info.status == "FINISHED"
        assert fluent.registry_client().target == other.registry


def test_multi_chunk_artifacts_round_trip_and_damage_is_caught(
    client: Client, services: Services, tmp_path: Path
) -> None:
    # Several chunks plus a partial one: exercises the read-ahead and writer threads.
    data = os.urandom(5 * CHUNK_BYTES + 12_345)
    source = tmp_path / "big.bin"
    source.write_bytes(data)
    run_id = client.create_run("0").info.run_id
    uploaded: list[tuple[int, int]] = []
    stored = client.tracking.log_artifact(
        run_id, source, "blobs", progress=lambda done, total: uploaded.append((done, total))
    )
    assert stored.sha256 == hashlib.sha256(data).hexdigest() and stored.file_size == len(data)
    assert uploaded[-1] == (len(data), len(data))

    downloaded: list[tuple[int, int]] = []
    local = Path(
        client.download_artifacts(
            run_id,
            "blobs/big.bin",
            str(tmp_path / "dl"),
            progress=lambda done, total: downloaded.append((done, total)),
        )
    )
    assert local.read_bytes() == data
    assert downloaded[-1] == (len(data), len(data))

    # Damage the stored copy behind the server's back: the download must refuse it.
    (stored_file,) = [p for p in services.artifact_root.rglob("big.bin") if run_id in p.as_posix()]
    damaged = bytearray(stored_file.read_bytes())
    damaged[3 * CHUNK_BYTES] ^= 0xFF
    stored_file.write_bytes(bytes(damaged))
    target = tmp_path / "dl2"
    with pytest.raises(DataLoss) as caught:
        client.download_artifacts(run_id, "blobs/big.bin", str(target))
    assert caught.value.reason == "DIGEST_MISMATCH"
    assert [p for p in target.rglob("*") if p.is_file()] == []  # no file, not even a partial one


def test_a_file_rewritten_while_it_uploads_is_not_stored(client: Client, tmp_path: Path) -> None:
    run_id = client.create_run("0").info.run_id
    checkpoint = tmp_path / "ckpt.bin"
    checkpoint.write_bytes(b"A" * (4 * CHUNK_BYTES))

    def rewrite_once_underway(done: int, total: int) -> None:
        if done == CHUNK_BYTES:  # the first MiB is out: the rest would be the new version's
            with checkpoint.open("r+b") as f:
                f.write(b"B" * (4 * CHUNK_BYTES))

    with pytest.raises(DataLoss) as changed:
        client.tracking.log_artifact(run_id, checkpoint, progress=rewrite_once_underway)
    assert changed.value.reason == "FILE_CHANGED"
    assert client.list_artifacts(run_id) == []  # not a mix of the two versions
    client.tracking.log_artifact(run_id, checkpoint)  # left alone, it uploads
    assert [f.path for f in client.list_artifacts(run_id)] == ["ckpt.bin"]
