"""Experiment artifact locations through a real tracking server: only under its artifact root or
the extra roots it lists, never overlapping another experiment's (on every backend, and under
concurrent creates); the extra roots are checked at start like the root."""

from __future__ import annotations

import collections
import dataclasses
import functools
import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import pytest

from modelreg.tracking.v1 import tracking_pb2 as pb
from tracking_service.artifacts import ArtifactConfigError
from tracking_service.config import Settings
from tracking_service.server import create_server

from .conftest import Tracking, error_info, rpc_error, running
from .test_tracking_server import download, new_run, upload


def _settings(tmp_path: Path, *extra: str) -> Settings:
    return Settings(
        host="127.0.0.1",
        port=0,
        database_url=f"sqlite:///{tmp_path / 'tracking.db'}",
        artifact_root=(tmp_path / "artifacts").as_uri(),
        extra_artifact_roots=extra,
        workers=2,
    )


def test_locations_outside_the_roots_are_refused(tmp_path: Path) -> None:
    extra = tmp_path / "old-artifacts"
    extra.mkdir()
    with running(_settings(tmp_path, extra.as_uri())) as tracking:
        stub = tracking.stub
        refused = [
            "file:///any/dir",
            "s3://another-bucket/x",
            (tmp_path / "artifacts-evil").as_uri(),
            f"{(tmp_path / 'artifacts').as_uri()}/../elsewhere",
            f"{(tmp_path / 'artifacts').as_uri()}/.modelreg-staging",
            f"{(tmp_path / 'artifacts').as_uri()}/{'é' * 128}",  # 256 bytes: no file name
        ]
        for location in refused:
            call = pb.CreateExperimentRequest(name="e", artifact_location=location)
            assert rpc_error(functools.partial(stub.CreateExperiment, call)) == (
                grpc.StatusCode.INVALID_ARGUMENT,
                "INVALID_ARTIFACT_LOCATION",
            ), location
        # Under the root and under the extra root: accepted, and an upload lands there.
        for i, location in enumerate([f"{(tmp_path / 'artifacts').as_uri()}/team", f"{extra.as_uri()}/team"]):
            created = stub.CreateExperiment(
                pb.CreateExperimentRequest(name=f"ok{i}", artifact_location=location)
            )
            run_id = new_run(stub, experiment_id=created.experiment.experiment_id).info.run_id
            upload(stub, run_id, "model.bin", [b"weights"])
            assert download(stub, run_id, "model.bin")[1] == b"weights"
            stored = Path(location.removeprefix("file://")) / run_id / "artifacts" / "model.bin"
            assert stored.read_bytes() == b"weights"


def test_a_run_stored_outside_the_roots_takes_no_upload(tmp_path: Path) -> None:
    """An experiment placed elsewhere before the roots were enforced (or whose root was dropped
    from the settings) keeps its location, but the server writes nothing there any more."""
    outside = tmp_path / "outside"
    with running(_settings(tmp_path)) as tracking:
        run_id = new_run(tracking.stub).info.run_id
        with sqlite3.connect(tmp_path / "tracking.db") as db:
            db.execute("UPDATE runs SET artifact_uri = ? WHERE run_id = ?", (outside.as_uri(), run_id))
        assert rpc_error(lambda: upload(tracking.stub, run_id, "model.bin", [b"weights"])) == (
            grpc.StatusCode.FAILED_PRECONDITION,
            "ARTIFACT_LOCATION_NOT_ALLOWED",
        )
    assert not outside.exists()


def test_an_extra_root_the_store_cannot_write_stops_the_start(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    with pytest.raises(ArtifactConfigError):
        create_server(_settings(tmp_path, f"{blocker.as_uri()}/artifacts"))
    assert not (tmp_path / "tracking.db").exists()  # checked before the database is created


IN_USE = (grpc.StatusCode.FAILED_PRECONDITION, "ARTIFACT_LOCATION_IN_USE")


def _create(tracking: Tracking, name: str, location: str) -> pb.Experiment:
    request = pb.CreateExperimentRequest(name=name, artifact_location=location)
    return tracking.stub.CreateExperiment(request).experiment


def test_a_location_overlapping_another_experiments_is_in_use(tracking: Tracking) -> None:
    """The attack: an experiment placed inside another's run directory would overwrite its files
    (those of a registered version too). Equal, below and above are refused alike, deleted or not."""
    root = tracking.settings.artifact_root
    alice = _create(tracking, "alice", f"{root}/team/alice")
    run = new_run(tracking.stub, experiment_id=alice.experiment_id)
    upload(tracking.stub, run.info.run_id, "model/model.bin", [b"v1"])
    overlapping = [
        f"{root}/team/alice",
        f"{root}/team/alice/",
        f"{run.info.artifact_uri}/model",
        f"{root}/team",
    ]
    for i, location in enumerate(overlapping):
        error, info = error_info(functools.partial(_create, tracking, f"mallory{i}", location))
        assert (error.code(), info.reason) == IN_USE, location  # type: ignore[attr-defined]
        assert dict(info.metadata) == {"field": "artifact_location"}
        message = error.details()  # type: ignore[attr-defined]
        assert not any(part in message for part in (root, "alice", f"'{alice.experiment_id}'")), message
    # A name is taken before a location is looked at: a retried create reads as such.
    assert rpc_error(lambda: _create(tracking, "alice", f"{root}/team/alice")) == (
        grpc.StatusCode.ALREADY_EXISTS,
        "EXPERIMENT_ALREADY_EXISTS",
    )
    tracking.stub.DeleteExperiment(pb.DeleteExperimentRequest(experiment_id=alice.experiment_id))
    assert rpc_error(lambda: _create(tracking, "late", f"{run.info.artifact_uri}/x")) == IN_USE
    # Beside it, segment by segment, is free; the deleted experiment comes back unaffected.
    _create(tracking, "bob", f"{root}/team/alice-2")
    _create(tracking, "carol", f"{root}/team/carol")
    tracking.stub.RestoreExperiment(pb.RestoreExperimentRequest(experiment_id=alice.experiment_id))
    upload(tracking.stub, run.info.run_id, "model/extra.bin", [b"more"])
    assert download(tracking.stub, run.info.run_id, "model/model.bin")[1] == b"v1"


def test_default_locations_are_reserved_and_count(tracking_settings: Settings, tmp_path: Path) -> None:
    """Under the artifact root the default directories (<root>/<id>, present or future) and the
    root itself are no custom location; under a previous root, now an extra one, the default
    locations made there count like any other. An extra root may be a location, once."""
    old, fresh = tracking_settings.artifact_root, (tmp_path / "fresh").as_uri()
    with running(tracking_settings) as tracking:
        default = tracking.stub.CreateExperiment(pb.CreateExperimentRequest(name="made-by-default"))
        run = new_run(tracking.stub, experiment_id=default.experiment.experiment_id)
        for location in (old, f"{old}/", f"{old}/0", f"{old}/7/x"):
            call = functools.partial(_create, tracking, "squatter", location)
            assert rpc_error(call) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARTIFACT_LOCATION")
    (tmp_path / "fresh").mkdir()
    moved = dataclasses.replace(
        tracking_settings, artifact_root=(tmp_path / "new").as_uri(), extra_artifact_roots=(old, fresh)
    )
    with running(moved) as tracking:
        for i, location in enumerate([old, f"{run.info.artifact_uri}/x"]):
            assert rpc_error(functools.partial(_create, tracking, f"old{i}", location)) == IN_USE
        assert _create(tracking, "all-of-fresh", fresh).artifact_location == fresh
        assert rpc_error(lambda: _create(tracking, "fresh-again", f"{fresh}/")) == IN_USE


def _create_at_once(
    tracking: Tracking, start: threading.Barrier, race: int, depth: int
) -> grpc.StatusCode | None:
    """Creates an experiment ``depth`` deep in the race's directory once every thread is ready;
    the status code of its failure, None when it was created."""
    location = f"{tracking.settings.artifact_root}/race{race}" + "/n" * depth
    start.wait()
    try:
        _create(tracking, f"race{race}-{depth}", location)
    except grpc.RpcError as error:
        return error.code()  # type: ignore[attr-defined, no-any-return]
    return None


def test_concurrent_nested_creates_admit_one(tracking: Tracking) -> None:
    """Locations each inside the next, created at once: exactly one wins, the others are in use."""
    threads = 6
    for race in range(5):
        at_once = functools.partial(_create_at_once, tracking, threading.Barrier(threads), race)
        with ThreadPoolExecutor(threads) as pool:
            outcomes = collections.Counter(pool.map(at_once, range(threads)))
        assert outcomes == {None: 1, grpc.StatusCode.FAILED_PRECONDITION: threads - 1}


def test_segments_of_255_bytes_take_uploads(tracking: Tracking) -> None:
    name = "é" * 127 + "a"  # 255 bytes, the limit
    created = _create(tracking, "long", f"{tracking.settings.artifact_root}/{name}")
    run_id = new_run(tracking.stub, experiment_id=created.experiment_id).info.run_id
    upload(tracking.stub, run_id, f"{name}/model.bin", [b"weights"])
    assert download(tracking.stub, run_id, f"{name}/model.bin")[1] == b"weights"
    # A file name of 255 bytes too: staging names do not grow with the file's name.
    upload(tracking.stub, run_id, f"{name}/{name}", [b"long name"])
    assert download(tracking.stub, run_id, f"{name}/{name}")[1] == b"long name"
