"""`modelreg gc`: removes the files and rows of runs and experiments deleted long enough ago and
keeps the rest, through both real servers and the real command (which runs `python -m
tracking_service gc` with the tracking service's settings, here its MODELREG_* variables), on
every database backend and, for the files, on S3.

Runs and experiments are made "deleted long ago" by moving their deletion time back in the
tracking database, as the days passing would; everything else goes through the client.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

import modelreg
from modelreg import exceptions
from modelreg.cli import main
from modelreg_server.validation import MAX_EXPERIMENT_ID
from tests.conftest import Backend, S3Server
from tests.servers import running_registry, running_tracking
from tracking_service import config as tracking_config
from tracking_service import server as tracking_server
from tracking_service.__main__ import main as tracking_main
from tracking_service.artifacts import S3Options, open_artifact_store
from tracking_service.gc import GarbageCollector, GcRequest
from tracking_service.store.sql import SqlTrackingStore

DAY_MS = 86_400_000
RUN_TABLES = ("params", "metrics", "latest_metrics", "run_tags", "artifacts", "artifact_seals", "runs")
WEIGHTS = b"model weights"
NOTES = b"notes"


@dataclass(frozen=True)
class Deployment:
    tracking: str
    registry: str
    database: str  # the tracking database
    artifact_root: Path

    def client(self) -> modelreg.Client:
        return modelreg.Client(self.tracking, self.registry)


@pytest.fixture
def deployment(
    backend: Backend,
    database_url_factory: Callable[[str], str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Deployment]:
    database = database_url_factory(backend.name)
    with (
        running_tracking(tmp_path, database) as (tracking, artifact_root),
        running_registry(tmp_path, tracking, backend.url) as registry,
    ):
        # `modelreg gc` reads the tracking service's settings from the environment.
        monkeypatch.setenv("MODELREG_TRACKING_DATABASE_URL", database)
        monkeypatch.setenv("MODELREG_ARTIFACT_ROOT", artifact_root.as_uri())
        yield Deployment(tracking, registry, database, artifact_root)


def gc(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any, str]:
    """Runs `modelreg gc ARGV --json`: exit code, the report, stderr."""
    code = main(["gc", *argv, "--json"])
    captured = capsys.readouterr()
    return code, json.loads(captured.out) if captured.out else None, captured.err


def new_run(client: modelreg.Client, experiment_id: str, files: Path) -> str:
    """A run with a param, a metric, a tag and two files (model/model.bin and notes.txt)."""
    run_id = client.create_run(experiment_id).info.run_id
    client.log_param(run_id, "alpha", 0.5)
    client.log_metric(run_id, "rmse", 0.25)
    client.set_tag(run_id, "team", "pricing")
    local = files / uuid.uuid4().hex
    (local / "model").mkdir(parents=True)
    (local / "model" / "model.bin").write_bytes(WEIGHTS)
    (local / "notes.txt").write_bytes(NOTES)
    client.log_artifacts(run_id, str(local))
    return run_id


def backdate(
    database: str, *, runs: tuple[str, ...] = (), experiments: tuple[str, ...] = (), days: int
) -> None:
    """Moves the deletion time of ``runs`` and of ``experiments`` (and of the runs deleted with
    them, stamped with the same time) ``days`` back."""
    engine = sa.create_engine(database)
    shift = {"shift": days * DAY_MS}
    try:
        with engine.begin() as connection:
            for run_id in runs:
                connection.execute(
                    sa.text("UPDATE runs SET deleted_time = deleted_time - :shift WHERE run_id = :id"),
                    {**shift, "id": run_id},
                )
            for experiment_id in map(int, experiments):
                connection.execute(
                    sa.text(
                        "UPDATE runs SET deleted_time = deleted_time - :shift WHERE experiment_id = :id "
                        "AND deleted_time = (SELECT last_update_time FROM experiments WHERE experiment_id = :id)"
                    ),
                    {**shift, "id": experiment_id},
                )
                connection.execute(
                    sa.text(
                        "UPDATE experiments SET last_update_time = last_update_time - :shift "
                        "WHERE experiment_id = :id"
                    ),
                    {**shift, "id": experiment_id},
                )
    finally:
        engine.dispose()


def rows_of_run(database: str, run_id: str) -> dict[str, int]:
    engine = sa.create_engine(database)
    try:
        with engine.connect() as connection:
            return {
                table: connection.execute(
                    sa.text(f"SELECT COUNT(*) FROM {table} WHERE run_id = :id"), {"id": run_id}
                ).scalar_one()
                for table in RUN_TABLES
            }
    finally:
        engine.dispose()


def removed_run(run_id: str, experiment_id: str) -> dict[str, object]:
    """A removed run as the report lists it: a run of new_run, two files."""
    return {"run_id": run_id, "experiment_id": experiment_id, "files": 2, "bytes": len(WEIGHTS) + len(NOTES)}


def run_directory(deployment: Deployment, experiment_id: str, run_id: str) -> Path:
    return deployment.artifact_root / experiment_id / run_id


def assert_intact(client: modelreg.Client, deployment: Deployment, experiment_id: str, run_id: str) -> None:
    """The run answers and its files are all there, with their content."""
    assert client.get_run(run_id).data.params == {"alpha": "0.5"}
    files = run_directory(deployment, experiment_id, run_id) / "artifacts"
    assert (files / "model" / "model.bin").read_bytes() == WEIGHTS
    assert (files / "notes.txt").read_bytes() == NOTES


def assert_removed(client: modelreg.Client, deployment: Deployment, experiment_id: str, run_id: str) -> None:
    with pytest.raises(exceptions.NotFound):
        client.get_run(run_id)
    assert not run_directory(deployment, experiment_id, run_id).exists()
    assert set(rows_of_run(deployment.database, run_id).values()) == {0}


def test_runs_deleted_long_ago_are_removed_recent_and_live_ones_kept(
    capsys: pytest.CaptureFixture[str], deployment: Deployment, tmp_path: Path
) -> None:
    with deployment.client() as client:
        experiment = client.create_experiment(f"gc-{uuid.uuid4().hex[:8]}")
        old, recent, live = (new_run(client, experiment, tmp_path) for _ in range(3))
        client.delete_run(old)
        client.delete_run(recent)
        backdate(deployment.database, runs=(old,), days=31)  # the default keeps 30 days

        code, report, err = gc(capsys)

        assert (code, err) == (0, "")
        assert report["removed_runs"] == [removed_run(old, experiment)]
        assert report["kept_runs"] == [
            {"run_id": recent, "experiment_id": experiment, "reason": "deleted too recently"}
        ]
        assert (report["dry_run"], report["older_than"]) == (False, "30d")
        assert_removed(client, deployment, experiment, old)
        assert_intact(client, deployment, experiment, recent)
        assert_intact(client, deployment, experiment, live)
        client.restore_run(recent)  # kept means restorable, files and all
        assert_intact(client, deployment, experiment, recent)


def test_dry_run_reports_and_changes_nothing(
    capsys: pytest.CaptureFixture[str], deployment: Deployment, tmp_path: Path
) -> None:
    with deployment.client() as client:
        experiment = client.create_experiment(f"gc-{uuid.uuid4().hex[:8]}")
        run_id = new_run(client, experiment, tmp_path)
        client.delete_run(run_id)
        client.delete_experiment(experiment)
        rows = rows_of_run(deployment.database, run_id)

        code, report, err = gc(capsys, "--older-than", "0", "--dry-run")
        text_code = main(["gc", "--older-than", "0", "--dry-run"])
        text = capsys.readouterr().out

        assert (code, err, text_code) == (0, "", 0)
        assert report["dry_run"] is True
        assert report["removed_runs"] == [removed_run(run_id, experiment)]
        assert report["removed_experiments"] == [{"experiment_id": experiment, "location_removed": False}]
        assert f"would remove run {run_id} (experiment {experiment}): 2 files" in text
        assert rows_of_run(deployment.database, run_id) == rows
        client.restore_experiment(experiment)
        assert_intact(client, deployment, experiment, run_id)


def test_a_run_a_version_was_registered_from_is_kept_whole(
    capsys: pytest.CaptureFixture[str], deployment: Deployment, tmp_path: Path
) -> None:
    with deployment.client() as client:
        experiment = client.create_experiment(f"gc-{uuid.uuid4().hex[:8]}")
        registered, plain = new_run(client, experiment, tmp_path), new_run(client, experiment, tmp_path)
        model = f"Gc-{uuid.uuid4().hex[:6]}"
        client.create_registered_model(model)
        client.create_model_version(model, f"runs:/{registered}/model", run_id=registered)
        client.delete_run(registered)
        client.delete_run(plain)
        client.delete_experiment(experiment)
        backdate(deployment.database, runs=(registered, plain), experiments=(experiment,), days=400)

        code, report, err = gc(capsys)

        assert (code, err) == (0, "")
        assert [run["run_id"] for run in report["removed_runs"]] == [plain]
        assert report["kept_runs"] == [
            {"run_id": registered, "experiment_id": experiment, "reason": "holds registered model files"}
        ]
        assert report["kept_experiments"] == [
            {"experiment_id": experiment, "reason": "holds runs that are kept"}
        ]
        assert client.get_experiment(experiment).lifecycle_stage == "deleted"
        assert_removed(client, deployment, experiment, plain)
        assert_intact(client, deployment, experiment, registered)
        download = tmp_path / "downloaded.bin"
        client.download_model_version_file(model, 1, "model.bin", download)
        assert download.read_bytes() == WEIGHTS


def test_experiments_go_with_their_runs_and_their_directory_when_empty(
    capsys: pytest.CaptureFixture[str], deployment: Deployment, tmp_path: Path
) -> None:
    with deployment.client() as client:
        default_location = client.create_experiment(f"gc-{uuid.uuid4().hex[:8]}")
        custom = deployment.artifact_root / f"custom-{uuid.uuid4().hex[:8]}"
        shared = client.create_experiment(f"gc-{uuid.uuid4().hex[:8]}", artifact_location=custom.as_uri())
        recent = client.create_experiment(f"gc-{uuid.uuid4().hex[:8]}")
        runs = {e: new_run(client, e, tmp_path) for e in (default_location, shared, recent)}
        for experiment in runs:
            client.delete_experiment(experiment)
        backdate(deployment.database, experiments=(default_location, shared), days=40)
        (custom / "README").write_text("not modelreg's")  # someone else's file in the location

        code, report, err = gc(capsys)

        assert (code, err) == (0, "")
        assert sorted(run["run_id"] for run in report["removed_runs"]) == sorted(
            [runs[default_location], runs[shared]]
        )
        assert report["removed_experiments"] == [
            {"experiment_id": default_location, "location_removed": True},
            {"experiment_id": shared, "location_removed": False},
        ]
        assert report["kept_experiments"] == [{"experiment_id": recent, "reason": "deleted too recently"}]
        for gone in (default_location, shared):
            with pytest.raises(exceptions.NotFound):
                client.get_experiment(gone)
        assert not (deployment.artifact_root / default_location).exists()
        assert [p.name for p in custom.iterdir()] == ["README"]
        client.restore_experiment(recent)
        assert_intact(client, deployment, recent, runs[recent])


def test_run_and_experiment_ids_restrict_what_goes(
    capsys: pytest.CaptureFixture[str], deployment: Deployment, tmp_path: Path
) -> None:
    with deployment.client() as client:
        first, second = (client.create_experiment(f"gc-{uuid.uuid4().hex[:8]}") for _ in range(2))
        a, b, c = (
            new_run(client, first, tmp_path),
            new_run(client, first, tmp_path),
            new_run(client, second, tmp_path),
        )
        live = new_run(client, second, tmp_path)
        for run_id in (a, b, c):
            client.delete_run(run_id)

        code, report, err = gc(capsys, "--older-than", "0", "--run-ids", f"{a},{live}")
        assert (code, err) == (0, "")
        assert [run["run_id"] for run in report["removed_runs"]] == [a]
        assert report["kept_runs"] == [{"run_id": live, "experiment_id": "", "reason": "not deleted"}]
        assert report["removed_experiments"] == report["kept_experiments"] == []

        code, report, err = gc(capsys, "--older-than", "0", "--experiment-ids", second)
        assert (code, err) == (0, "")
        assert [run["run_id"] for run in report["removed_runs"]] == [c]
        assert report["kept_experiments"] == [{"experiment_id": second, "reason": "not deleted"}]

        assert_removed(client, deployment, first, a)
        assert_removed(client, deployment, second, c)
        assert_intact(client, deployment, second, live)
        client.restore_run(b)
        assert_intact(client, deployment, first, b)


def test_a_run_restored_while_gc_runs_keeps_its_files(deployment: Deployment, tmp_path: Path) -> None:
    """The collector lists the run as deleted; the run is restored before its turn comes: the
    purge re-checks under the run's row lock and keeps it."""
    with deployment.client() as client:
        experiment = client.create_experiment(f"gc-{uuid.uuid4().hex[:8]}")
        run_id = new_run(client, experiment, tmp_path)
        client.delete_run(run_id)

        class RestoringStore(SqlTrackingStore):
            def deleted_runs(self, *args: Any, **kwargs: Any) -> Any:
                listed = super().deleted_runs(*args, **kwargs)
                if listed:
                    client.restore_run(run_id)
                return listed

        engine = sa.create_engine(deployment.database)
        root = deployment.artifact_root.as_uri()
        store = RestoringStore(engine, root)
        try:
            report = GarbageCollector(store, open_artifact_store(root, None), [root]).collect(GcRequest(0))
        finally:
            engine.dispose()

        assert report.removed_runs == []
        assert [(k.run_id, k.reason) for k in report.kept_runs] == [(run_id, "not deleted any more")]
        assert_intact(client, deployment, experiment, run_id)


def test_files_that_cannot_be_removed_leave_the_run_for_the_next_gc(
    capsys: pytest.CaptureFixture[str], deployment: Deployment, tmp_path: Path
) -> None:
    """A store failing halfway through a run's files (after removing them, as a crash before the
    commit would) leaves the run's rows: the run stays deleted, and the next gc removes it."""
    with deployment.client() as client:
        experiment = client.create_experiment(f"gc-{uuid.uuid4().hex[:8]}")
        run_id = new_run(client, experiment, tmp_path)
        client.delete_run(run_id)
        root = deployment.artifact_root.as_uri()
        files = open_artifact_store(root, None)

        class FailingStore:
            def __getattr__(self, name: str) -> Any:
                return getattr(files, name)

            def delete_tree(self, uri: str) -> Any:
                files.delete_tree(uri)
                raise OSError(5, "Input/output error")

        engine = sa.create_engine(deployment.database)
        try:
            collector = GarbageCollector(SqlTrackingStore(engine, root), FailingStore(), [root])  # type: ignore[arg-type]
            report = collector.collect(GcRequest(0))
        finally:
            engine.dispose()

        assert report.failed and report.removed_runs == []
        assert [(k.run_id, k.reason) for k in report.kept_runs] == [
            (run_id, "its files could not be removed: [Errno 5] Input/output error")
        ]
        assert client.get_run(run_id).info.lifecycle_stage == "deleted"
        assert not (run_directory(deployment, experiment, run_id) / "artifacts").exists()

        code, report, err = gc(capsys, "--older-than", "0")
        assert (code, err) == (0, "")
        assert report["removed_runs"] == [
            {"run_id": run_id, "experiment_id": experiment, "files": 0, "bytes": 0}
        ]
        assert_removed(client, deployment, experiment, run_id)


@pytest.mark.parametrize(
    ("argv", "flag"),
    [
        (["--older-than", "5x"], "--older-than"),
        (["--older-than", "-1d"], "--older-than"),
        (["--older-than", "30"], "--older-than"),
        (["--run-ids", "not-a-run"], "--run-ids"),
        (["--experiment-ids", "1,x"], "--experiment-ids"),
        (["--experiment-ids", f"1,{MAX_EXPERIMENT_ID + 1}"], "--experiment-ids"),
    ],
)
def test_bad_options_exit_2_naming_the_flag(
    capsys: pytest.CaptureFixture[str], argv: list[str], flag: str
) -> None:
    assert main(["gc", *argv]) == 2
    assert f"argument {flag}" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exited:  # the command modelreg gc runs, parsed alike
        tracking_main(["gc", *argv])
    assert exited.value.code == 2
    assert f"argument {flag}" in capsys.readouterr().err


@pytest.mark.s3
def test_files_on_s3_go_with_their_run(
    capsys: pytest.CaptureFixture[str],
    s3_server: S3Server,
    s3_bucket: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from minio import Minio

    database = f"sqlite:///{tmp_path / 'tracking.db'}"
    root = f"s3://{s3_bucket}/prefix"
    s3 = S3Options(s3_server.endpoint, s3_server.access_key, s3_server.secret_key)
    settings = tracking_config.Settings(
        host="127.0.0.1", port=0, database_url=database, artifact_root=root, s3=s3
    )
    for name, value in {
        "MODELREG_TRACKING_DATABASE_URL": database,
        "MODELREG_ARTIFACT_ROOT": root,
        "MODELREG_S3_ENDPOINT": s3.endpoint,
        "MODELREG_S3_ACCESS_KEY": s3.access_key,
        "MODELREG_S3_SECRET_KEY": s3.secret_key,
    }.items():
        monkeypatch.setenv(name, value)
    server, port = tracking_server.create_server(settings)
    server.start()
    try:
        with modelreg.TrackingClient(f"127.0.0.1:{port}") as tracking:
            experiment = tracking.create_experiment(f"gc-{uuid.uuid4().hex[:8]}").experiment_id
            old, live = (tracking.create_run(experiment).info.run_id for _ in range(2))
            model = tmp_path / "model.bin"
            model.write_bytes(WEIGHTS)
            for run_id in (old, live):
                tracking.log_artifact(run_id, model, "model")
            tracking.delete_run(old)

            code, report, err = gc(capsys, "--older-than", "0")

            assert (code, err) == (0, "")
            assert report["removed_runs"] == [
                {"run_id": old, "experiment_id": experiment, "files": 1, "bytes": len(WEIGHTS)}
            ]
            with pytest.raises(exceptions.NotFound):
                tracking.get_run(old)
            keys = Minio(s3.endpoint, s3.access_key, s3.secret_key, secure=False).list_objects(
                s3_bucket, recursive=True
            )
            assert {key.object_name for key in keys} == {
                f"prefix/{experiment}/{live}/artifacts/model/model.bin"
            }
            digest = hashlib.sha256(WEIGHTS).hexdigest()
            assert [(f.path, f.sha256) for f in tracking.list_artifacts(live, "model")] == [
                ("model/model.bin", digest)
            ]
    finally:
        server.stop(None).wait()
