"""Both services with access control on, sharing one access database, and helpers to make users."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import modelreg
from modelreg.access_client import AccessClient
from modelreg_server.access.policy import AccessPolicy, Level
from modelreg_server.settings import AuthSettings
from tests.servers import Services, running_services

BOOTSTRAP = "bootstrap-secret-for-tests-0123456789"


def auth_settings(root: Path, default_level: Level = Level.READ) -> AuthSettings:
    return AuthSettings(
        enabled=True,
        database_url=f"sqlite:///{root / 'auth.db'}",
        bootstrap_admin_token=BOOTSTRAP,
        policy=AccessPolicy(default_level=default_level),
    )


@dataclass(frozen=True)
class SecuredServices:
    services: Services

    def access(self, token: str = BOOTSTRAP) -> AccessClient:
        return AccessClient(self.services.registry, token=token)

    def client(self, token: str | None) -> modelreg.Client:
        return modelreg.Client(self.services.tracking, self.services.registry, token=token or "")

    def user_token(self, name: str, *, admin: bool = False, groups: tuple[str, ...] = ()) -> str:
        """Creates ``name`` (unless it exists) and returns a fresh token of theirs."""
        with self.access() as access:
            if name not in {u.name for u in access.list_users()}:
                access.create_user(name, admin=admin, groups=groups)
            return access.create_token(name).secret


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecuredServices]:
    """Access control on, every authenticated user reads everything by default."""
    root = tmp_path_factory.mktemp("secured")
    with running_services(root, auth_settings(root)) as services:
        yield SecuredServices(services)


@pytest.fixture(scope="module")
def private(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecuredServices]:
    """Access control on with no default level: users see only what they are granted."""
    root = tmp_path_factory.mktemp("private")
    with running_services(root, auth_settings(root, Level.NONE)) as services:
        yield SecuredServices(services)
