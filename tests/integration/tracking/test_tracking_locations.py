"""Experiment artifact locations through a real tracking server: only under its artifact root or
the extra roots it lists; the extra roots are checked at start like the root."""

from __future__ import annotations

import functools
import sqlite3
from pathlib import Path

import grpc
import pytest

from modelreg.tracking.v1 import tracking_pb2 as pb
from tracking_service.artifacts import ArtifactConfigError
from tracking_service.config import Settings
from tracking_service.server import create_server

from .conftest import rpc_error, running
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
