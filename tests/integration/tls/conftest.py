"""Local certificates for the TLS suites, made by modelreg_server.tls as `modelreg tls init` makes
them: a CA, a server certificate for localhost and 127.0.0.1, and a client certificate."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from modelreg.config import TlsConfig
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
