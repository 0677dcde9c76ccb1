"""What a caller of either service reads when a call fails names run ids and paths inside the run,
never the server's directories, its artifact root or its database URLs: those stay in the log."""

from __future__ import annotations

import socket
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

import modelreg
from modelreg.exceptions import (
    FailedPrecondition,
    Internal,
    InvalidArgument,
    ModelregError,
    NotFound,
    Unavailable,
)
from registry_service import config as registry_config
from registry_service import server as registry_server
from tests.servers import running_registry, running_tracking


def test_failures_name_runs_and_relative_paths_only(tmp_path: Path) -> None:
    servers = tmp_path / "servers"  # every file either server owns lies below it
    servers.mkdir()
    tracking_db, registry_db = servers / "tracking.db", servers / "registry.db"
    urls = [f"sqlite:///{tracking_db}", f"sqlite:///{registry_db}"]
    files = tmp_path / "client"
    files.mkdir()
    model_file = files / "model.bin"
    model_file.write_bytes(b"weights")
    model = str(model_file)
    failures: list[ModelregError] = []

    def fails(call: Callable[[], object], expected: type[ModelregError]) -> None:
        with pytest.raises(expected) as caught:
            call()
        failures.append(caught.value)

    def run_sql(database: Path, statement: str, *values: str) -> None:
        with sqlite3.connect(database) as db:
            db.execute(statement, values)

    with (
        running_tracking(servers, urls[0]) as (tracking, artifact_root),
        running_registry(servers, tracking, urls[1]) as registry,
        modelreg.Client(tracking, registry) as client,
    ):
        run_id = client.create_run("0").info.run_id
        client.log_artifact(run_id, model, "model")
        client.create_registered_model("M")
        client.create_model_version("M", f"runs:/{run_id}/model", run_id=run_id)

        fails(lambda: client.create_experiment("e", artifact_location="file:///any/dir"), InvalidArgument)
        fails(lambda: client.download_artifacts(run_id, "model/missing.bin", str(files / "a")), NotFound)
        client.log_artifact(run_id, model, "notes")
        fails(lambda: client.log_artifact(run_id, model, "notes/model.bin"), InvalidArgument)  # below a file
        fails(lambda: client.log_artifact(run_id, model, "model"), FailedPrecondition)  # sealed
        fails(lambda: client.create_model_version("M", "file:///elsewhere/m", run_id=run_id), InvalidArgument)
        fails(
            lambda: client.create_model_version("M", f"runs:/{run_id}/gone", run_id=run_id),
            FailedPrecondition,
        )

        # The bytes vanish behind the manifest's back: tracking used to name their server URI.
        (artifact_root / "0" / run_id / "artifacts" / "model" / "model.bin").unlink()
        fails(lambda: client.download_artifacts(run_id, "model/model.bin", str(files / "b")), NotFound)
        fails(
            lambda: client.download_model_version_file("M", 1, "model.bin", str(files / "c")),
            FailedPrecondition,
        )

        # A run of an experiment placed outside the roots before they were enforced: no upload.
        legacy = client.create_run("0").info.run_id
        outside = tmp_path / "outside"
        run_sql(tracking_db, "UPDATE runs SET artifact_uri = ? WHERE run_id = ?", outside.as_uri(), legacy)
        fails(lambda: client.log_artifact(legacy, model), FailedPrecondition)
        assert not outside.exists()

        # A malformed stored location is the server's fault: INTERNAL, the URI only in its log.
        broken = client.create_run("0").info.run_id
        client.log_artifact(broken, model)
        malformed = f"{artifact_root.as_uri()}/../x"
        run_sql(tracking_db, "UPDATE runs SET artifact_uri = ? WHERE run_id = ?", malformed, broken)
        fails(lambda: client.download_artifacts(broken, "model.bin", str(files / "d")), Internal)

        # Database failures.
        run_sql(tracking_db, "ALTER TABLE runs RENAME TO runs_gone")
        fails(lambda: client.get_run(run_id), Internal)
        run_sql(registry_db, "ALTER TABLE registered_models RENAME TO registered_models_gone")
        fails(lambda: client.get_registered_model("M"), Internal)

    secrets = [str(servers), artifact_root.as_uri(), *urls]
    for failure in failures:
        shown = [failure.message, *failure.metadata.keys(), *failure.metadata.values()]
        leaks = [(text, secret) for text in shown for secret in secrets if secret in text]
        assert not leaks, f"{failure.reason}: {leaks}"
    assert {f.reason for f in failures} >= {"ARTIFACT_NOT_FOUND", "INVALID_SOURCE", "INTERNAL"}


def test_an_unreachable_tracking_service_is_not_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The registry says tracking did not answer, not where it looked for it."""
    monkeypatch.setenv("MODELREG_RETRY_SECONDS", "0")  # the client would retry UNAVAILABLE for a minute
    with socket.socket() as closed:  # a port nothing listens on once the socket is closed
        closed.bind(("127.0.0.1", 0))
        target = f"127.0.0.1:{closed.getsockname()[1]}"
    server, port = registry_server.create_server(
        registry_config.Settings(
            host="127.0.0.1",
            port=0,
            database_url=f"sqlite:///{tmp_path / 'registry.db'}",
            tracking_target=target,
            # Long enough for the retries to end in UNAVAILABLE, whose gRPC text names the target.
            tracking_timeout_seconds=8.0,
            workers=2,
        )
    )
    server.start()
    try:
        with modelreg.RegistryClient(f"127.0.0.1:{port}") as registry:
            registry.create_registered_model("M")
            run_id = "a" * 32
            with pytest.raises(Unavailable) as caught:
                registry.create_model_version("M", f"runs:/{run_id}/model", run_id=run_id)
    finally:
        server.stop(None).wait()
    assert caught.value.reason == "TRACKING_UNAVAILABLE"
    assert target not in caught.value.message and "127.0.0.1" not in caught.value.message
