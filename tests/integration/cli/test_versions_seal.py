"""`modelreg versions seal`: the upgrade step that seals versions registered before tracking sealed
a version's files, through both real servers on every backend.

A pre-upgrade version is simulated by deleting its seal row in the tracking database: tracking
migration 0004 created ``artifact_seals`` empty, so a version registered before it has its lineage
in the registry and no seal row, which is what deleting the row leaves. The first test shows an
overwrite of such a version is accepted (so it fails if the simulation did not take) before the
command makes tracking refuse one (ARTIFACT_SEALED).

Access control is off, or the caller owns the experiment (its creator has MANAGE), so the tests
hold whether a direct SealArtifacts needs READ or EDIT on the run's experiment.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa

import modelreg
from modelreg import exceptions
from modelreg.cli import main
from modelreg.entities import VersionSeal
from modelreg_server.access.policy import Level
from tests.conftest import Backend
from tests.integration.access.conftest import SecuredServices, auth_settings
from tests.servers import running_registry, running_services, running_tracking


@dataclass(frozen=True)
class Deployment:
    tracking: str
    registry: str
    tracking_database: str

    def targets(self) -> list[str]:
        return ["--tracking-uri", self.tracking, "--registry-uri", self.registry]

    def client(self, token: str | None = None) -> modelreg.Client:
        return modelreg.Client(self.tracking, self.registry, token=token)


@pytest.fixture
def deployment(
    backend: Backend, database_url_factory: Callable[[str], str], tmp_path: Path
) -> Iterator[Deployment]:
    tracking_database = database_url_factory(backend.name)
    with (
        running_tracking(tmp_path, tracking_database) as (tracking, _),
        running_registry(tmp_path, tracking, backend.url) as registry,
    ):
        yield Deployment(tracking, registry, tracking_database)


def register(client: modelreg.Client, files: Path, model: str) -> str:
    """A run with model/model.bin in a new experiment, registered as the next version of
    ``model``; returns the run's id."""
    run_id = client.create_run(client.create_experiment(f"seal-{uuid.uuid4().hex[:8]}")).info.run_id
    local = files / uuid.uuid4().hex / "model.bin"
    local.parent.mkdir()
    local.write_bytes(b"registered weights")
    client.log_artifact(run_id, str(local), "model")
    client.create_model_version(model, f"runs:/{run_id}/model", run_id=run_id)
    return run_id


def unseal(tracking_database: str, run_id: str) -> None:
    """Makes the run's registered files a pre-upgrade version's: no seal row."""
    engine = sa.create_engine(tracking_database)
    try:
        with engine.begin() as connection:
            deleted = connection.execute(
                sa.text("DELETE FROM artifact_seals WHERE run_id = :run_id"), {"run_id": run_id}
            )
        assert deleted.rowcount == 1  # registering sealed it: the test starts from a real seal
    finally:
        engine.dispose()


def overwrite(client: modelreg.Client, files: Path, run_id: str) -> None:
    local = files / f"overwrite-{uuid.uuid4().hex}" / "model.bin"
    local.parent.mkdir()
    local.write_bytes(b"overwritten weights")
    client.log_artifact(run_id, str(local), "model")


def refused_overwrite(client: modelreg.Client, files: Path, run_id: str) -> str:
    with pytest.raises(exceptions.FailedPrecondition) as refused:
        overwrite(client, files, run_id)
    return refused.value.reason


def seal(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["versions", "seal", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_sealing_a_pre_upgrade_version_refuses_overwrites(
    capsys: pytest.CaptureFixture[str], deployment: Deployment, tmp_path: Path
) -> None:
    # A quote and a backslash: --model must reach the registry's filter as this exact name.
    model, other = f"O'Sealed-{uuid.uuid4().hex[:6]}\\", f"Other-{uuid.uuid4().hex[:6]}"
    with deployment.client() as client:
        client.create_registered_model(model)
        client.create_registered_model(other)
        run_id = register(client, tmp_path, model)
        other_run = register(client, tmp_path, other)
        unseal(deployment.tracking_database, run_id)
        unseal(deployment.tracking_database, other_run)
        overwrite(client, tmp_path, run_id)  # accepted: the version is unprotected, as before upgrading

        code, out, err = seal(capsys, *deployment.targets(), "--model", model, "--json")
        assert (code, err) == (0, "")
        assert json.loads(out) == [
            {
                "name": model,
                "version": 1,
                "run_id": run_id,
                "artifact_path": "model",
                "status": "SEALED",
                "files": 1,
                "code": "",
                "reason": "",
                "message": "",
            }
        ]
        assert refused_overwrite(client, tmp_path, run_id) == "ARTIFACT_SEALED"
        overwrite(client, tmp_path, other_run)  # --model sealed that model's versions only

        # Idempotent: sealing again (now every model) reports the same files, sealed.
        code, out, _ = seal(capsys, *deployment.targets())
        assert code == 0
        header, *rows = out.splitlines()
        assert header.split() == ["NAME", "VERSION", "RUN_ID", "PATH", "STATUS", "FILES", "ERROR"]
        assert sorted(row.split()[1:] for row in rows) == sorted(
            [["1", run_id, "model", "SEALED", "1", "-"], ["1", other_run, "model", "SEALED", "1", "-"]]
        )
        assert refused_overwrite(client, tmp_path, other_run) == "ARTIFACT_SEALED"


def test_a_deleted_run_is_reported_and_the_other_versions_are_sealed(
    capsys: pytest.CaptureFixture[str], deployment: Deployment, tmp_path: Path
) -> None:
    model = f"Mixed-{uuid.uuid4().hex[:6]}"
    with deployment.client() as client:
        client.create_registered_model(model)
        run_ids = [register(client, tmp_path, model) for _ in range(3)]
        for run_id in run_ids:
            unseal(deployment.tracking_database, run_id)
        client.delete_run(run_ids[1])  # version 2's run: its files are kept, so it must be reported
        client.create_model_version(model, "s3://elsewhere/model")  # version 4: no run, nothing to seal

        code, out, err = seal(capsys, *deployment.targets(), "--model", model)
        assert code == 1
        assert err == "error: SEAL_FAILED: 1 of 4 versions are not sealed\n"
        rows = {int(row.split()[1]): row for row in out.splitlines()[1:]}
        assert rows[2].split()[4:7] == ["FAILED", "0", "FAILED_PRECONDITION"]
        assert "RUN_DELETED:" in rows[2]
        assert rows[4].split()[2:6] == ["-", "-", "SKIPPED", "0"]
        for version in (1, 3):
            assert rows[version].split()[4:] == ["SEALED", "1", "-"]
            assert refused_overwrite(client, tmp_path, run_ids[version - 1]) == "ARTIFACT_SEALED"

        # The run restored, the same command seals its version too.
        client.restore_run(run_ids[1])
        results = client.seal_registered_versions(model)
    assert [(r.version, r.status) for r in results] == [
        (4, "SKIPPED"),
        (3, "SEALED"),
        (2, "SEALED"),
        (1, "SEALED"),
    ]
    assert results[3] == VersionSeal(model, 1, run_ids[0], "model", "SEALED", files=1)


def test_a_missing_model_is_not_found(capsys: pytest.CaptureFixture[str], deployment: Deployment) -> None:
    code, out, err = seal(capsys, *deployment.targets(), "--model", "NoSuchModel")
    assert (code, out) == (1, "")
    assert err.startswith("error: REGISTERED_MODEL_NOT_FOUND: ")


def test_a_caller_who_may_not_seal_a_version_is_told_per_version(tmp_path: Path) -> None:
    """Access control on, nothing readable by default: the owner of the experiment and model seals
    its version; a user granted READ on the model alone sees the version but may not seal it."""
    with running_services(tmp_path, auth_settings(tmp_path, Level.NONE)) as services:
        deployment = Deployment(services.tracking, services.registry, f"sqlite:///{tmp_path / 'tracking.db'}")
        secured = SecuredServices(services)
        model = f"Owned-{uuid.uuid4().hex[:6]}"
        with deployment.client(secured.user_token("owner")) as owner:
            owner.create_registered_model(model)
            run_id = register(owner, tmp_path, model)
            owner.set_registered_model_permission(model, "READ", user="reader")
            unseal(deployment.tracking_database, run_id)
            with deployment.client(secured.user_token("reader")) as reader:
                [denied] = reader.seal_registered_versions()
            overwrite(owner, tmp_path, run_id)  # the refusal sealed nothing
            [sealed] = owner.seal_registered_versions()
            assert refused_overwrite(owner, tmp_path, run_id) == "ARTIFACT_SEALED"
    assert (denied.name, denied.status, denied.code) == (model, "FAILED", "PERMISSION_DENIED")
    assert (sealed.status, sealed.files) == ("SEALED", 1)
