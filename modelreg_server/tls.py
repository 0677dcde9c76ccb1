"""Local TLS material: a CA, a server certificate and a client certificate (``modelreg tls init``).

Meant for development, tests and a compose stack; in production certificates come from your own
CA. Keys are EC P-256: small, and fast to make.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CLIENT_COMMON_NAME = "modelreg-client"
# Names every server certificate holds, so local clients reach it by either.
LOCAL_HOSTS = ("localhost", "127.0.0.1")
# What ``write_local_certificates`` writes; the ``*-key.pem`` files are private (0600).
FILES = ("ca.pem", "ca-key.pem", "server.pem", "server-key.pem", "client.pem", "client-key.pem")


@dataclass(frozen=True)
class KeyPair:
    certificate: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    def cert_pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    def key_pem(self) -> bytes:
        return self.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _builder(
    subject: str, issuer: x509.Name, key: ec.EllipticCurvePrivateKey, days: int
) -> x509.CertificateBuilder:
    # Valid from a minute ago: a peer whose clock runs slightly behind still accepts it.
    now = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
    return (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=days))
    )


def new_ca(common_name: str = "modelreg local CA", days: int = 3650) -> KeyPair:
    key = ec.generate_private_key(ec.SECP256R1())
    certificate = (
        _builder(common_name, _name(common_name), key, days)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    return KeyPair(certificate, key)


def _san(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def issue(
    ca: KeyPair, common_name: str, *, hosts: Sequence[str] = (), client: bool = False, days: int = 825
) -> KeyPair:
    """A certificate signed by ``ca``: for a server named by ``hosts`` (DNS names or IP addresses),
    or with ``client`` for a client (mTLS)."""
    key = ec.generate_private_key(ec.SECP256R1())
    usage = ExtendedKeyUsageOID.CLIENT_AUTH if client else ExtendedKeyUsageOID.SERVER_AUTH
    builder = (
        _builder(common_name, ca.certificate.subject, key, days)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    )
    if hosts:
        builder = builder.add_extension(x509.SubjectAlternativeName([_san(h) for h in hosts]), critical=False)
    return KeyPair(builder.sign(ca.key, hashes.SHA256()), key)


def write_local_certificates(
    directory: Path, hosts: Sequence[str] = (), *, force: bool = False
) -> dict[str, Path]:
    """Writes :data:`FILES` into ``directory``; the server certificate names ``hosts`` plus
    :data:`LOCAL_HOSTS`. Raises FileExistsError, writing nothing, when one exists and not ``force``."""
    paths = {name: directory / name for name in FILES}
    existing = [str(path) for path in paths.values() if path.exists()]
    if existing and not force:
        raise FileExistsError(f"{', '.join(existing)} already exist (--force replaces them)")
    names = list(dict.fromkeys([*hosts, *LOCAL_HOSTS]))
    ca = new_ca()
    server = issue(ca, names[0], hosts=names)
    client = issue(ca, CLIENT_COMMON_NAME, client=True)
    contents = {
        "ca.pem": ca.cert_pem(),
        "ca-key.pem": ca.key_pem(),
        "server.pem": server.cert_pem(),
        "server-key.pem": server.key_pem(),
        "client.pem": client.cert_pem(),
        "client-key.pem": client.key_pem(),
    }
    directory.mkdir(parents=True, exist_ok=True)
    for name, data in contents.items():
        mode = 0o600 if name.endswith("-key.pem") else 0o644
        fd = os.open(paths[name], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        with os.fdopen(fd, "wb") as file:
            os.fchmod(file.fileno(), mode)  # a replaced file keeps its old mode otherwise
            file.write(data)
    return paths
