"""The services' TLS variables: read once, checked at start, each failure one line naming the variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelreg_server.settings import ConfigError, EnvReader
from modelreg_server.tls import write_local_certificates
from registry_service import config as registry_config
from tracking_service import config as tracking_config


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return {
        name: str(path) for name, path in write_local_certificates(tmp_path_factory.mktemp("certs")).items()
    }


def test_unset_is_plaintext_and_set_is_read_once(files: dict[str, str]) -> None:
    assert EnvReader({}).tls() is None
    env = {"MODELREG_TLS_CERT_FILE": files["server.pem"], "MODELREG_TLS_KEY_FILE": files["server-key.pem"]}
    tls = tracking_config.Settings.from_env(env).tls
    assert tls is not None
    assert (tls.certificate_chain, tls.private_key, tls.client_ca) == (
        Path(files["server.pem"]).read_bytes(),
        Path(files["server-key.pem"]).read_bytes(),
        None,
    )
    assert "PRIVATE KEY" not in repr(tls)
    mtls = registry_config.Settings.from_env({**env, "MODELREG_TLS_CLIENT_CA_FILE": files["ca.pem"]}).tls
    assert mtls is not None and mtls.client_ca == Path(files["ca.pem"]).read_bytes()


@pytest.mark.parametrize(
    ("env", "named", "says"),
    [
        ({"MODELREG_TLS_CERT_FILE": "server.pem"}, "MODELREG_TLS_CERT_FILE", "MODELREG_TLS_KEY_FILE is not"),
        (
            {"MODELREG_TLS_KEY_FILE": "server-key.pem"},
            "MODELREG_TLS_KEY_FILE",
            "MODELREG_TLS_CERT_FILE is not",
        ),
        (
            {"MODELREG_TLS_CERT_FILE": "missing", "MODELREG_TLS_KEY_FILE": "server-key.pem"},
            "MODELREG_TLS_CERT_FILE",
            "cannot be read",
        ),
        (
            {"MODELREG_TLS_CERT_FILE": "not-pem", "MODELREG_TLS_KEY_FILE": "server-key.pem"},
            "MODELREG_TLS_CERT_FILE",
            "not a PEM certificate",
        ),
        (
            {"MODELREG_TLS_CERT_FILE": "server.pem", "MODELREG_TLS_KEY_FILE": "not-pem"},
            "MODELREG_TLS_KEY_FILE",
            "not an unencrypted PEM private key",
        ),
        (
            {"MODELREG_TLS_CERT_FILE": "server.pem", "MODELREG_TLS_KEY_FILE": "client-key.pem"},
            "MODELREG_TLS_KEY_FILE",
            "not the key of the certificate",
        ),
        (
            {"MODELREG_TLS_CLIENT_CA_FILE": "ca.pem"},
            "MODELREG_TLS_CLIENT_CA_FILE",
            "needs MODELREG_TLS_CERT_FILE",
        ),
        (
            {
                "MODELREG_TLS_CERT_FILE": "server.pem",
                "MODELREG_TLS_KEY_FILE": "server-key.pem",
                "MODELREG_TLS_CLIENT_CA_FILE": "not-pem",
            },
            "MODELREG_TLS_CLIENT_CA_FILE",
            "not a PEM certificate",
        ),
    ],
)
def test_bad_tls_files_name_the_variable(
    files: dict[str, str], tmp_path: Path, env: dict[str, str], named: str, says: str
) -> None:
    (tmp_path / "not-pem").write_text("hello")
    paths = {**files, "missing": str(tmp_path / "missing"), "not-pem": str(tmp_path / "not-pem")}
    resolved = {name: paths[value] for name, value in env.items()}
    for settings in (tracking_config.Settings, registry_config.Settings):
        with pytest.raises(ConfigError, match=f"^{named} .*{says}"):
            settings.from_env(resolved)


def test_the_registry_checks_its_tracking_channel_files(files: dict[str, str], tmp_path: Path) -> None:
    assert registry_config.Settings.from_env({}).tracking_tls is None
    with pytest.raises(
        ConfigError, match=r"^MODELREG_TRACKING_CLIENT_CERT_FILE is set but MODELREG_TRACKING_CLIENT_KEY_FILE"
    ):
        registry_config.Settings.from_env({"MODELREG_TRACKING_CLIENT_CERT_FILE": files["client.pem"]})
    with pytest.raises(ConfigError, match=r"^MODELREG_TRACKING_CA_FILE cannot be read"):
        registry_config.Settings.from_env({"MODELREG_TRACKING_CA_FILE": str(tmp_path / "missing")})
    with pytest.raises(ConfigError, match=r"^MODELREG_TRACKING_TARGET"):
        registry_config.Settings.from_env({"MODELREG_TRACKING_TARGET": "https://tracking:50051"})
    settings = registry_config.Settings.from_env(
        {"MODELREG_TRACKING_TARGET": "grpcs://tracking:50051", "MODELREG_TRACKING_CA_FILE": files["ca.pem"]}
    )
    assert settings.tracking_target == "grpcs://tracking:50051"
    assert settings.tracking_tls is not None and settings.tracking_tls.ca_file == files["ca.pem"]


def test_tracking_channel_files_with_a_plaintext_target_are_refused(files: dict[str, str]) -> None:
    """Certificates for a channel that would carry the registry's service token in clear."""
    with pytest.raises(
        ConfigError, match=r"^MODELREG_TRACKING_CA_FILE is set but MODELREG_TRACKING_TARGET is not grpcs://"
    ):
        registry_config.Settings.from_env(
            {"MODELREG_TRACKING_TARGET": "tracking:50051", "MODELREG_TRACKING_CA_FILE": files["ca.pem"]}
        )
