"""The two distributions built from this repository: `modelreg` (clients/pyproject.toml) and
`modelreg-server` (pyproject.toml). What each depends on is part of the contract with the people
who install them, so it is pinned here."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path
from typing import Any

import modelreg

ROOT = Path(__file__).resolve().parents[2]


def _project(path: Path) -> dict[str, Any]:
    project: dict[str, Any] = tomllib.loads(path.read_text())
    return project


def _names(requirements: list[str]) -> set[str]:
    return {re.split(r"[\[<>=!~; ]", requirement, maxsplit=1)[0] for requirement in requirements}


CLIENT = _project(ROOT / "clients" / "pyproject.toml")
SERVER = _project(ROOT / "pyproject.toml")


def test_the_client_needs_only_grpc_and_protobuf() -> None:
    project = CLIENT["project"]
    assert project["name"] == "modelreg"
    assert _names(project["dependencies"]) == {
        "grpcio",
        "grpcio-status",
        "protobuf",
        "googleapis-common-protos",
    }
    assert _names(project["optional-dependencies"]["sklearn"]) == {"numpy", "pandas", "scikit-learn", "skops"}
    assert _names(project["optional-dependencies"]["serve"]) == {"starlette", "uvicorn", "prometheus-client"}
    assert set(project["optional-dependencies"]) == {"sklearn", "serve"}
    assert project["scripts"] == {"modelreg": "modelreg.cli:main"}
    assert CLIENT["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"] == ["modelreg"]


def test_the_server_depends_on_the_client_of_its_own_release() -> None:
    project = SERVER["project"]
    version = CLIENT["project"]["version"]
    assert project["name"] == "modelreg-server"
    assert project["version"] == version == modelreg.__version__
    assert f"modelreg=={version}" in project["dependencies"]
    assert f"modelreg[sklearn,serve]=={version}" in project["optional-dependencies"]["dev"]
    assert _names(project["dependencies"]) == {
        "modelreg",
        "sqlalchemy",
        "alembic",
        "minio",
        "prometheus-client",
        "grpcio-health-checking",
        "grpcio-reflection",
        "pyjwt",
        "cryptography",
        "starlette",
        "uvicorn",
        "uvloop",
        "httptools",
        "orjson",
        "httpcore",
        "pyyaml",
        "standardwebhooks",
    }
    assert _names(project["optional-dependencies"]["postgres"]) == {"psycopg"}
    assert _names(project["optional-dependencies"]["mysql"]) == {"pymysql"}
    packages = SERVER["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"]
    assert packages == ["modelreg_server", "tracking_service", "registry_service", "mlflow_gateway"]
    assert set(project["entry-points"]["modelreg.commands"]) == {"server", "db", "gc", "tls", "mlflow-server"}


def test_each_distribution_ships_the_license() -> None:
    assert (ROOT / "clients" / "LICENSE").read_bytes() == (ROOT / "LICENSE").read_bytes()
    assert CLIENT["project"]["license"] == SERVER["project"]["license"] == "Apache-2.0"


def test_the_client_works_without_its_sklearn_extra_and_without_the_server() -> None:
    """`pip install modelreg` alone: importing the client, its CLI and making a Client must not import
    what only the sklearn extra or the server distribution installs (blocked here in a fresh process)."""
    script = textwrap.dedent(
        """
        import sys
        for name in ("numpy", "pandas", "scipy", "sklearn", "skops", "sqlalchemy", "alembic", "minio",
                     "prometheus_client", "grpc_health", "grpc_reflection", "modelreg_server",
                     "tracking_service", "registry_service"):
            sys.modules[name] = None  # any import of it raises ImportError
        import modelreg, modelreg.cli, modelreg.models, modelreg.pyfunc, modelreg.sklearn, modelreg.uris
        modelreg.cli.command_entry_points = dict  # as without modelreg-server
        modelreg.Client().close()
        assert modelreg.cli.main(["versions", "list", "--help"]) == 0
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
