"""Wrong settings stop a service at start: a non-zero exit and one line on stderr, no traceback.

Each case runs the real command (``python -m <service> serve``) in a subprocess with the service's
default log level, so nothing the service logs before failing may bury the line either.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.ops.conftest import free_port

ROOT = Path(__file__).resolve().parents[3]
EXIT_STARTUP = 1
EXIT_SETTINGS = 2


def _serve(service: str, tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    # Defaults point at tmp_path so a case that wrongly starts cannot touch the checkout.
    defaults = {
        "MODELREG_TRACKING_DATABASE_URL": f"sqlite:///{tmp_path / 'tracking.db'}",
        "MODELREG_REGISTRY_DATABASE_URL": f"sqlite:///{tmp_path / 'registry.db'}",
        "MODELREG_ARTIFACT_ROOT": (tmp_path / "artifacts").as_uri(),
        "MODELREG_TRACKING_PORT": "0",
        "MODELREG_REGISTRY_PORT": "0",
    }
    base = {key: value for key, value in os.environ.items() if not key.startswith("MODELREG_")}
    return subprocess.run(
        [sys.executable, "-m", service, "serve"],
        env={**base, **defaults, **env},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )


def _assert_one_line(result: subprocess.CompletedProcess[str], code: int, names: str) -> None:
    lines = result.stderr.strip().splitlines()
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr
    assert len(lines) == 1, result.stderr
    assert names in lines[0]


def _unreachable_postgres() -> str:
    return f"postgresql+psycopg://modelreg@127.0.0.1:{free_port()}/modelreg"


@pytest.mark.parametrize(
    ("service", "variable"),
    [
        ("tracking_service", "MODELREG_TRACKING_DATABASE_URL"),
        ("registry_service", "MODELREG_REGISTRY_DATABASE_URL"),
    ],
)
@pytest.mark.parametrize("url", ["not a database url", "nosuchdialect://host/db"])
def test_an_unusable_database_url_is_a_settings_error(
    service: str, variable: str, url: str, tmp_path: Path
) -> None:
    _assert_one_line(_serve(service, tmp_path, **{variable: url}), EXIT_SETTINGS, variable)


@pytest.mark.parametrize(
    ("service", "variable"),
    [
        ("tracking_service", "MODELREG_TRACKING_DATABASE_URL"),
        ("registry_service", "MODELREG_REGISTRY_DATABASE_URL"),
    ],
)
def test_an_unreachable_postgresql_stops_the_start(service: str, variable: str, tmp_path: Path) -> None:
    url = _unreachable_postgres()
    port = url.rsplit(":", 1)[1].split("/")[0]
    _assert_one_line(_serve(service, tmp_path, **{variable: url}), EXIT_STARTUP, f"port {port}")


def test_an_unreachable_s3_endpoint_stops_the_start(tmp_path: Path) -> None:
    endpoint = f"127.0.0.1:{free_port()}"
    result = _serve(
        "tracking_service",
        tmp_path,
        MODELREG_ARTIFACT_ROOT="s3://modelreg-artifacts/artifacts",
        MODELREG_S3_ENDPOINT=endpoint,
        MODELREG_S3_ACCESS_KEY="key",
        MODELREG_S3_SECRET_KEY="secret",
    )
    _assert_one_line(result, EXIT_STARTUP, endpoint)
    assert not (tmp_path / "tracking.db").exists()  # checked before the database is created


@pytest.mark.parametrize("root", ["gs://bucket/artifacts", "/no/scheme", "s3://x/too-short-bucket-name"])
def test_an_unknown_artifact_scheme_or_bucket_is_a_settings_error(root: str, tmp_path: Path) -> None:
    result = _serve(
        "tracking_service",
        tmp_path,
        MODELREG_ARTIFACT_ROOT=root,
        MODELREG_S3_ENDPOINT="127.0.0.1:9000",
        MODELREG_S3_ACCESS_KEY="key",
        MODELREG_S3_SECRET_KEY="secret",
    )
    _assert_one_line(result, EXIT_SETTINGS, "MODELREG_ARTIFACT_ROOT")


@pytest.mark.parametrize("service", ["tracking_service", "registry_service"])
def test_a_port_in_use_stops_the_start(service: str, tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        env = {"MODELREG_TRACKING_HOST": "127.0.0.1", "MODELREG_REGISTRY_HOST": "127.0.0.1"}
        env["MODELREG_TRACKING_PORT" if service == "tracking_service" else "MODELREG_REGISTRY_PORT"] = port
        result = _serve(service, tmp_path, MODELREG_LOG_LEVEL="WARNING", **env)
    _assert_one_line(result, EXIT_STARTUP, port)
