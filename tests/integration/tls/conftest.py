"""Local certificates for the TLS suites, made by modelreg_server.tls as `modelreg tls init` makes
them: a CA, a server certificate for localhost and 127.0.0.1, and a client certificate."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from modelreg import RegistryClient, TrackingClient
from modelreg.config import TlsConfig
from modelreg.entities import ModelVersion
from modelreg_server.settings import EnvReader, TlsSettings
from modelreg_server.tls import write_local_certificates


@dataclass(frozen=True)
class Certs:
    files: dict[str, Path]

    def server_env(self, *, mtls: bool = False) -> dict[str, str]:
        env = {
            "MODELREG_TLS_CERT_FILE": str(self.files["server.pem"]),
            "MODELREG_TLS_KEY_FILE": str(self.files["server-key.pem"]),
        }
        if mtls:
            env["MODELREG_TLS_CLIENT_CA_FILE"] = str(self.files["ca.pem"])
        return env

    def server(self, *, mtls: bool = False) -> TlsSettings:
        """A service's TLS, read from its variables as the service reads them."""
        tls = EnvReader(self.server_env(mtls=mtls)).tls()
        assert tls is not None
        return tls

    def client(self, *, certificate: bool = False) -> TlsConfig:
        """Trusts the local CA; with ``certificate``, presents the client certificate (mTLS)."""
        if not certificate:
            return TlsConfig(ca_file=str(self.files["ca.pem"]))
        return TlsConfig(
            ca_file=str(self.files["ca.pem"]),
            client_cert_file=str(self.files["client.pem"]),
            client_key_file=str(self.files["client-key.pem"]),
        )


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return Certs(write_local_certificates(tmp_path_factory.mktemp("certs")))


def register_a_run(tracking: TrackingClient, registry: RegistryClient, files: Path) -> ModelVersion:
    """An experiment, a run with a metric and a model file, and a version registered from it: the
    registry checks the run at the tracking service before it answers."""
    experiment = tracking.create_experiment(f"tls-{uuid.uuid4().hex[:8]}")
    run_id = tracking.create_run(experiment.experiment_id).info.run_id
    tracking.log_metric(run_id, "rmse", 0.5)
    model = files / "model.bin"
    model.write_bytes(b"weights")
    tracking.log_artifact(run_id, model, "model")
    name = f"Model-{uuid.uuid4().hex[:8]}"
    registry.create_registered_model(name)
    version = registry.create_model_version(name, f"runs:/{run_id}/model", run_id=run_id)
    fetched = registry.get_model_version(name, version.version)
    assert fetched.lineage is not None
    assert (fetched.lineage.run_id, dict(fetched.lineage.metrics)) == (run_id, {"rmse": 0.5})
    return fetched
