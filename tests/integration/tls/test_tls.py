"""Both services serving TLS (and mTLS) in-process on 127.0.0.1:0, reached over real grpcs://
channels: the client's workflow, the registry's lineage call to tracking, and the errors of a
client that speaks the wrong protocol. Clients get a 5 s deadline, so a hang fails the test."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from modelreg import RegistryClient, TlsConfig, TrackingClient, cli
from modelreg.exceptions import Unavailable
from modelreg_server.settings import EnvReader
from registry_service import config as registry_config
from tests.integration.tls.conftest import Certs
from tests.servers import register_a_run, running_registry, running_tracking

TIMEOUT = 5.0


def test_the_workflow_runs_over_tls(certs: Certs, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELREG_CA_FILE", str(certs.files["ca.pem"]))
    with (
        running_tracking(tmp_path, tls=certs.server()) as (tracking, _),
        running_registry(
            tmp_path, f"grpcs://{tracking}", tls=certs.server(), tracking_tls=certs.client()
        ) as registry,
        TrackingClient(f"grpcs://{tracking}", timeout=TIMEOUT) as tracking_client,
        RegistryClient(f"grpcs://{registry}", timeout=TIMEOUT) as registry_client,
    ):
        assert register_a_run(tracking_client, registry_client, tmp_path).version == 1


def test_mtls_requires_a_client_certificate(certs: Certs, tmp_path: Path) -> None:
    # The registry's client certificate for tracking comes from its variables.
    tracking_tls = registry_config.Settings.from_env(
        {
            "MODELREG_TRACKING_TARGET": "grpcs://tracking:50051",
            "MODELREG_TRACKING_CA_FILE": str(certs.files["ca.pem"]),
            "MODELREG_TRACKING_CLIENT_CERT_FILE": str(certs.files["client.pem"]),
            "MODELREG_TRACKING_CLIENT_KEY_FILE": str(certs.files["client-key.pem"]),
        }
    ).tracking_tls
    with (
        running_tracking(tmp_path, tls=certs.server(mtls=True)) as (tracking, _),
        running_registry(tmp_path, f"grpcs://{tracking}", tracking_tls=tracking_tls) as registry,
        RegistryClient(registry, timeout=TIMEOUT) as registry_client,
    ):
        with (
            TrackingClient(f"grpcs://{tracking}", timeout=TIMEOUT, tls=certs.client()) as anonymous,
            pytest.raises(Unavailable, match="requires a client certificate"),
        ):
            list(anonymous.search_experiments())
        with TrackingClient(
            f"grpcs://{tracking}", timeout=TIMEOUT, tls=certs.client(certificate=True)
        ) as client:
            assert register_a_run(client, registry_client, tmp_path).version == 1


def test_a_plaintext_client_against_a_tls_port_is_told_to_use_grpcs(certs: Certs, tmp_path: Path) -> None:
    with (
        running_tracking(tmp_path, tls=certs.server()) as (tracking, _),
        TrackingClient(tracking, timeout=TIMEOUT) as client,
    ):
        with pytest.raises(Unavailable, match="if it serves TLS, use grpcs://"):
            client.get_experiment("0")
        with pytest.raises(Unavailable, match="if it serves TLS, use grpcs://"):
            client.create_experiment("never")  # a write, which is not retried


def test_a_tls_client_against_a_plaintext_port_is_told_the_server_is_plaintext(
    certs: Certs, tmp_path: Path
) -> None:
    with (
        running_tracking(tmp_path) as (tracking, _),
        TrackingClient(f"grpcs://{tracking}", timeout=TIMEOUT, tls=certs.client()) as client,
        pytest.raises(Unavailable, match=r"is the server plaintext\? use host:port instead of grpcs://"),
    ):
        client.get_experiment("0")


def test_an_untrusted_server_certificate_names_the_ca_variable(certs: Certs, tmp_path: Path) -> None:
    # TlsConfig(): the system roots, which do not hold the local CA.
    with (
        running_tracking(tmp_path, tls=certs.server()) as (tracking, _),
        TrackingClient(f"grpcs://{tracking}", timeout=TIMEOUT, tls=TlsConfig()) as client,
        pytest.raises(Unavailable, match=r"not trusted.*MODELREG_CA_FILE"),
    ):
        client.get_experiment("0")


@pytest.mark.parametrize(
    ("given", "missing"),
    [
        ("MODELREG_CLIENT_CERT_FILE", "MODELREG_CLIENT_KEY_FILE"),
        ("MODELREG_CLIENT_KEY_FILE", "MODELREG_CLIENT_CERT_FILE"),
    ],
)
def test_a_client_certificate_without_its_key_is_refused(
    certs: Certs, monkeypatch: pytest.MonkeyPatch, given: str, missing: str
) -> None:
    monkeypatch.setenv(given, str(certs.files["client.pem"]))
    monkeypatch.delenv(missing, raising=False)
    with pytest.raises(ValueError, match=f"{given} .* but {missing}"):
        TrackingClient("grpcs://127.0.0.1:1")


def test_tls_init_writes_certificates_a_server_accepts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = tmp_path / "certs"
    assert cli.main(["tls", "init", "--dir", str(directory), "--host", "models.example"]) == 0
    names = {"ca.pem", "ca-key.pem", "server.pem", "server-key.pem", "client.pem", "client-key.pem"}
    assert {p.name for p in directory.iterdir()} == names
    for key in ("ca-key.pem", "server-key.pem", "client-key.pem"):
        assert stat.S_IMODE(os.stat(directory / key).st_mode) == 0o600
    written = {name: (directory / name).read_bytes() for name in names}
    capsys.readouterr()

    assert cli.main(["tls", "init", "--dir", str(directory)]) == 1
    assert "error: FILES_EXIST:" in capsys.readouterr().err
    assert {name: (directory / name).read_bytes() for name in names} == written
    assert cli.main(["tls", "init", "--dir", str(directory), "--force"]) == 0
    assert (directory / "ca.pem").read_bytes() != written["ca.pem"]

    tls = EnvReader(
        {
            "MODELREG_TLS_CERT_FILE": str(directory / "server.pem"),
            "MODELREG_TLS_KEY_FILE": str(directory / "server-key.pem"),
            "MODELREG_TLS_CLIENT_CA_FILE": str(directory / "ca.pem"),
        }
    ).tls()
    monkeypatch.setenv("MODELREG_CA_FILE", str(directory / "ca.pem"))
    monkeypatch.setenv("MODELREG_CLIENT_CERT_FILE", str(directory / "client.pem"))
    monkeypatch.setenv("MODELREG_CLIENT_KEY_FILE", str(directory / "client-key.pem"))
    with (
        running_tracking(tmp_path, tls=tls) as (tracking, _),
        TrackingClient(f"grpcs://{tracking}", timeout=TIMEOUT) as client,
    ):
        assert [x.name for x in client.search_experiments()] == ["Default"]


def test_tls_files_with_a_plaintext_target_are_refused_before_any_call(certs: Certs) -> None:
    """A token must never leave in clear because the target lacks grpcs://."""
    with pytest.raises(ValueError, match=r"MODELREG_CA_FILE is set but '127.0.0.1:1' is a plaintext target"):
        TrackingClient("127.0.0.1:1", token="secret", tls=TlsConfig(ca_file=str(certs.files["ca.pem"])))
