"""Static checks of docker-compose.yml: no Docker engine runs here, so the file itself is tested."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from tests.deploy.compose import ROOT, load_compose, service_environment

SERVICES = {
    "postgres",
    "minio",
    "minio-create-bucket",
    "tracking-migrate",
    "tracking",
    "registry-migrate",
    "registry",
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
    assert {"postgres-data", "minio-data"} <= set(compose["volumes"])


def test_services_publish_their_grpc_ports(compose: dict[str, Any]) -> None:
    assert "50051:50051" in compose["services"]["tracking"]["ports"]
    assert "50052:50052" in compose["services"]["registry"]["ports"]


@pytest.mark.parametrize(
    ("service", "target", "grpc_service"),
    [
        ("tracking", "127.0.0.1:50051", "modelreg.tracking.v1.TrackingService"),
        ("registry", "127.0.0.1:50052", "modelreg.registry.v1.RegistryService"),
    ],
)
def test_healthchecks_ask_the_grpc_health_service(
    compose: dict[str, Any], service: str, target: str, grpc_service: str
) -> None:
    test = compose["services"][service]["healthcheck"]["test"]
    assert test == ["CMD", "python", "-m", "modelreg_server.healthcheck", target, grpc_service]


def test_dependency_order(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert services["tracking-migrate"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    assert services["registry-migrate"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    assert services["tracking"]["depends_on"] == {
        "tracking-migrate": {"condition": "service_completed_successfully"},
        "minio-create-bucket": {"condition": "service_completed_successfully"},
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


def test_registry_reaches_tracking_by_its_service_name(compose: dict[str, Any]) -> None:
    assert service_environment(compose, "registry")["MODELREG_TRACKING_TARGET"] == "tracking:50051"


def test_tracking_stores_artifacts_on_minio(compose: dict[str, Any]) -> None:
    env = service_environment(compose, "tracking")
    assert env["MODELREG_ARTIFACT_ROOT"].startswith("s3://")
    assert env["MODELREG_S3_ENDPOINT"] == "minio:9000"
    assert env["MODELREG_TRACKING_DATABASE_URL"].startswith("postgresql+psycopg://")


def test_every_variable_compose_sets_is_read_by_the_service(compose: dict[str, Any]) -> None:
    from registry_service.config import Settings as RegistrySettings
    from tracking_service.config import Settings as TrackingSettings

    for service, settings in (("tracking", TrackingSettings), ("registry", RegistrySettings)):
        values = service_environment(compose, service)
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
