"""Static checks of docker-compose.yml: no Docker engine runs here, so the file itself is tested."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.compose import REQUIRED, ROOT, MissingVariable, load_compose, service_environment

SERVICES = {
    "certs",
    "postgres",
    "minio",
    "minio-create-bucket",
    "tracking-migrate",
    "tracking",
    "registry-migrate",
    "registry",
    "mlflow",
    "serving",
}


class RecordingEnv(Mapping[str, str]):
    """An environment that remembers every variable a Settings.from_env looked up."""

    def __init__(self, values: dict[str, str]) -> None:
        self._values = values
        self.read: set[str] = set()

    def __getitem__(self, key: str) -> str:
        self.read.add(key)
        return self._values[key]

    def __contains__(self, key: object) -> bool:
        if isinstance(key, str):
            self.read.add(key)
        return key in self._values

    def get(self, key: str, default: Any = None) -> Any:
        self.read.add(key)
        return self._values.get(key, default)

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load_compose()


def test_the_stack_has_its_services(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) == SERVICES
    assert {"postgres-data", "minio-data", "certs", "serving-cache"} <= set(compose["volumes"])


def test_the_servers_build_the_default_target_and_only_serving_builds_the_serving_one(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    builds = {name: service["build"] for name, service in services.items() if "build" in service}
    assert builds.pop("serving") == {"context": ".", "target": "serving"}
    assert set(builds) == {"certs", "tracking-migrate", "tracking", "registry-migrate", "registry", "mlflow"}
    assert all(build == {"context": ".", "target": "server"} for build in builds.values())
    # Two images from one Dockerfile: each target under its own tag.
    assert services["serving"]["image"] != services["registry"]["image"]


def test_services_publish_their_grpc_ports(compose: dict[str, Any]) -> None:
    assert "50051:50051" in compose["services"]["tracking"]["ports"]
    assert "50052:50052" in compose["services"]["registry"]["ports"]


@pytest.mark.parametrize(
    ("service", "target", "grpc_service"),
    [
        ("tracking", "grpcs://127.0.0.1:50051", "modelreg.tracking.v1.TrackingService"),
        ("registry", "grpcs://127.0.0.1:50052", "modelreg.registry.v1.RegistryService"),
    ],
)
def test_healthchecks_ask_the_grpc_health_service_over_tls(
    compose: dict[str, Any], service: str, target: str, grpc_service: str
) -> None:
    test = compose["services"][service]["healthcheck"]["test"]
    assert test == [
        "CMD",
        "env",
        "MODELREG_CA_FILE=/certs/ca.pem",
        "python",
        "-m",
        "modelreg_server.healthcheck",
        target,
        grpc_service,
    ]


def test_dependency_order(compose: dict[str, Any]) -> None:
    services = compose["services"]
    migrate_after = {
        "postgres": {"condition": "service_healthy"},
        "certs": {"condition": "service_completed_successfully"},
    }
    assert services["tracking-migrate"]["depends_on"] == migrate_after
    assert services["registry-migrate"]["depends_on"] == migrate_after
    assert services["tracking"]["depends_on"] == {
        "tracking-migrate": {"condition": "service_completed_successfully"},
        "minio-create-bucket": {"condition": "service_completed_successfully"},
        "certs": {"condition": "service_completed_successfully"},
    }
    assert services["registry"]["depends_on"] == {
        "registry-migrate": {"condition": "service_completed_successfully"},
        "tracking": {"condition": "service_healthy"},
    }
    assert services["minio-create-bucket"]["depends_on"] == {"minio": {"condition": "service_healthy"}}


def test_migrations_run_the_upgrade_command(compose: dict[str, Any]) -> None:
    assert compose["services"]["tracking-migrate"]["command"] == ["tracking_service", "db", "upgrade"]
    assert compose["services"]["registry-migrate"]["command"] == ["registry_service", "db", "upgrade"]
    assert compose["services"]["tracking"]["command"] == ["tracking_service", "serve"]
    assert compose["services"]["registry"]["command"] == ["registry_service", "serve"]


def test_registry_reaches_tracking_by_its_service_name_over_tls(compose: dict[str, Any]) -> None:
    env = service_environment(compose, "registry")
    assert env["MODELREG_TRACKING_TARGET"] == "grpcs://tracking:50051"
    assert env["MODELREG_TRACKING_CA_FILE"] == "/certs/ca.pem"


@pytest.mark.parametrize("service", ["tracking", "registry"])
def test_services_run_with_access_control_and_tls_and_without_reflection(
    compose: dict[str, Any], service: str
) -> None:
    env = service_environment(compose, service)
    assert env["MODELREG_AUTH"] == "on"
    assert env["MODELREG_AUTH_DATABASE_URL"].endswith("@postgres:5432/modelreg_auth")
    assert (env["MODELREG_TLS_CERT_FILE"], env["MODELREG_TLS_KEY_FILE"]) == (
        "/certs/server.pem",
        "/certs/server-key.pem",
    )
    assert env["MODELREG_REFLECTION"] == "false"
    assert env[f"MODELREG_{service.upper()}_HOST"] == "0.0.0.0"
    assert "certs:/certs:ro" in compose["services"][service]["volumes"]
    # The same access database for both, so a token works on either service.
    assert (
        env["MODELREG_AUTH_DATABASE_URL"]
        == service_environment(compose, "tracking")["MODELREG_AUTH_DATABASE_URL"]
    )


def test_the_certs_step_keeps_an_existing_set_and_names_the_service_hosts(compose: dict[str, Any]) -> None:
    certs = compose["services"]["certs"]
    command = certs["command"]
    assert command[:5] == ["modelreg.cli", "tls", "init", "--dir", "/certs"]
    assert "--keep-existing" in command
    hosts = [command[i + 1] for i, arg in enumerate(command) if arg == "--host"]
    assert {"tracking", "registry", "mlflow"} <= set(hosts)
    assert certs["volumes"] == ["certs:/certs"]
    assert "CREATE DATABASE modelreg_auth;" in (ROOT / "deploy" / "postgres-init.sql").read_text()


def test_tracking_stores_artifacts_on_minio(compose: dict[str, Any]) -> None:
    env = service_environment(compose, "tracking")
    assert env["MODELREG_ARTIFACT_ROOT"].startswith("s3://")
    assert env["MODELREG_S3_ENDPOINT"] == "minio:9000"
    assert env["MODELREG_TRACKING_DATABASE_URL"].startswith("postgresql+psycopg://")


def test_every_variable_compose_sets_is_read_by_the_service(compose: dict[str, Any], tmp_path: Path) -> None:
    from modelreg_server.tls import write_local_certificates
    from registry_service.config import Settings as RegistrySettings
    from tracking_service.config import Settings as TrackingSettings

    write_local_certificates(tmp_path, ["tracking", "registry"])  # what the certs step puts in /certs
    for service, settings in (("tracking", TrackingSettings), ("registry", RegistrySettings)):
        values = {
            key: value.replace("/certs/", f"{tmp_path}/")
            for key, value in service_environment(compose, service).items()
        }
        env = RecordingEnv(values)
        settings.from_env(env)  # the compose values must also be valid settings
        assert set(values) <= env.read, f"{service} ignores {sorted(set(values) - env.read)}"


def test_secrets_come_from_env_file_with_local_defaults() -> None:
    example = dict(
        line.split("=", 1)
        for line in (ROOT / ".env.example").read_text().splitlines()
        if line and not line.startswith("#")
    )
    compose = load_compose(
        {
            **REQUIRED,
            "POSTGRES_PASSWORD": "from-env-file",
            "MINIO_ROOT_PASSWORD": "minio-secret",
            "MODELREG_ARTIFACT_BUCKET": "b",
        }
    )
    tracking = service_environment(compose, "tracking")
    assert ":from-env-file@postgres:5432/" in tracking["MODELREG_TRACKING_DATABASE_URL"]
    assert tracking["MODELREG_S3_SECRET_KEY"] == "minio-secret"
    assert tracking["MODELREG_ARTIFACT_ROOT"] == "s3://b/artifacts"
    assert {"POSTGRES_PASSWORD", "MINIO_ROOT_PASSWORD"} <= set(example)


def test_the_stack_refuses_to_start_without_a_bootstrap_admin_token() -> None:
    """No well-known default: compose stops with the variable named (${NAME:?...})."""
    with pytest.raises(MissingVariable, match="MODELREG_BOOTSTRAP_ADMIN_TOKEN"):
        load_compose({})
    assert "MODELREG_BOOTSTRAP_ADMIN_TOKEN=" in (ROOT / ".env.example").read_text()


def test_the_mlflow_endpoint_serves_https_on_5000_in_front_of_both_services(compose: dict[str, Any]) -> None:
    mlflow = compose["services"]["mlflow"]
    assert mlflow["command"] == ["mlflow_gateway"]  # the image's entry point is `python -m`
    assert "5000:5000" in mlflow["ports"]
    assert mlflow["volumes"] == ["certs:/certs:ro"]
    assert service_environment(compose, "mlflow") == {
        "MODELREG_MLFLOW_HOST": "0.0.0.0",
        "MODELREG_MLFLOW_PORT": "5000",
        "MODELREG_TRACKING_URI": "grpcs://tracking:50051",
        "MODELREG_REGISTRY_URI": "grpcs://registry:50052",
        "MODELREG_CA_FILE": "/certs/ca.pem",
        "MODELREG_MLFLOW_TLS_CERT_FILE": "/certs/server.pem",
        "MODELREG_MLFLOW_TLS_KEY_FILE": "/certs/server-key.pem",
    }  # no database, no token: it relays each caller's own
    assert mlflow["depends_on"] == {
        "tracking": {"condition": "service_healthy"},
        "registry": {"condition": "service_healthy"},
    }
    check = mlflow["healthcheck"]["test"]
    assert check[:3] == ["CMD", "python", "-c"]
    assert "https://127.0.0.1:5000/health" in check[3] and "cafile='/certs/ca.pem'" in check[3]


def test_every_variable_compose_sets_is_read_by_the_mlflow_endpoint(compose: dict[str, Any]) -> None:
    from mlflow_gateway.settings import GatewaySettings
    from modelreg.config import TlsConfig

    values = service_environment(compose, "mlflow")
    env = RecordingEnv(values)
    settings = GatewaySettings.from_env(env)
    TlsConfig.from_env(env)  # what its clients of the services read
    assert set(values) <= env.read, f"the endpoint ignores {sorted(set(values) - env.read)}"
    assert (settings.host, settings.port, settings.tls_cert_file) == ("0.0.0.0", 5000, "/certs/server.pem")


def test_the_model_server_serves_the_walkthrough_model_on_5001_on_request(compose: dict[str, Any]) -> None:
    serving = compose["services"]["serving"]
    # The image's entry point is `modelreg serve`: the command is its arguments.
    assert serving["command"] == [
        "models:/HousePricePredictor@champion",
        "--host",
        "0.0.0.0",
        "--port",
        "5001",
    ]
    walkthrough = (ROOT / "examples" / "house_prices.py").read_text()
    assert 'MODEL_NAME = "HousePricePredictor"' in walkthrough
    assert serving["ports"] == ["127.0.0.1:5001:5001"]  # unauthenticated: host loopback only
    # Not part of `make up`: it needs a registered model and a token first.
    assert serving["profiles"] == ["serving"]
    assert serving["depends_on"] == {"registry": {"condition": "service_healthy"}}
    check = serving["healthcheck"]["test"]
    assert check[:3] == ["CMD", "python", "-c"]
    assert "'http://127.0.0.1:5001/ping'" in check[3]


def test_the_model_server_is_a_client_of_both_services_over_tls_with_its_own_token(
    compose: dict[str, Any],
) -> None:
    serving = compose["services"]["serving"]
    env = service_environment(compose, "serving")
    assert env == {
        "MODELREG_TRACKING_URI": "grpcs://tracking:50051",
        "MODELREG_REGISTRY_URI": "grpcs://registry:50052",
        "MODELREG_CA_FILE": "/certs/ca.pem",
        "MODELREG_TOKEN": "",
    }  # the same addresses and CA as the MLflow endpoint, which is the other client in the file
    mlflow = service_environment(compose, "mlflow")
    assert {k: mlflow[k] for k in ("MODELREG_TRACKING_URI", "MODELREG_REGISTRY_URI", "MODELREG_CA_FILE")} == {
        k: env[k] for k in ("MODELREG_TRACKING_URI", "MODELREG_REGISTRY_URI", "MODELREG_CA_FILE")
    }
    assert serving["volumes"] == ["certs:/certs:ro", "serving-cache:/cache"]
    token = service_environment(load_compose({**REQUIRED, "MODELREG_SERVING_TOKEN": "mrt_x_y"}), "serving")
    assert token["MODELREG_TOKEN"] == "mrt_x_y"
    assert "MODELREG_SERVING_TOKEN=" in (ROOT / ".env.example").read_text()
    # Every variable is one the client reads (modelreg.config is the only client module that
    # reads the environment, and names each variable it reads).
    import modelreg.config

    assert modelreg.config.__doc__ is not None
    documented = set(re.findall(r"``(MODELREG_[A-Z_]+)``", modelreg.config.__doc__))
    assert set(env) <= documented, sorted(set(env) - documented)
