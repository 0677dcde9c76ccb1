"""Opening the access database and attaching access control to a service's gRPC server."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import grpc

from modelreg.access.v1 import access_pb2_grpc
from modelreg_server.access.authenticator import Authenticator
from modelreg_server.access.oidc import OidcVerifier
from modelreg_server.access.service import AccessService
from modelreg_server.access.servicer import AccessServicer
from modelreg_server.access.store import SqlAccessStore
from modelreg_server.db import create_db_engine, ensure_schema, upgrade
from modelreg_server.settings import AuthSettings

MIGRATIONS_DIR = str(Path(__file__).parent / "migrations")
UPGRADE_COMMAND = "modelreg db upgrade"


@dataclass(frozen=True)
class Access:
    """What a server needs of access control: the authenticator for its interceptor and the
    store the AccessService serves; both None when access control is off (no access database
    is opened then)."""

    authenticator: Authenticator | None
    store: SqlAccessStore | None


def open_access(settings: AuthSettings, *, pool_size: int, auto_migrate: bool) -> Access:
    if not settings.enabled:
        return Access(None, None)
    engine = create_db_engine(settings.database_url, pool_size=pool_size)
    ensure_schema(engine, MIGRATIONS_DIR, auto_upgrade=auto_migrate, fix_command=UPGRADE_COMMAND)
    store = SqlAccessStore(engine)
    authenticator = Authenticator(
        store,
        oidc=OidcVerifier(settings.oidc) if settings.oidc else None,
        bootstrap_token=settings.bootstrap_admin_token,
        admin_group=settings.admin_group,
    )
    return Access(authenticator, store)


def add_access_service(server: grpc.Server, access: Access) -> None:
    access_pb2_grpc.add_AccessServiceServicer_to_server(AccessServicer(AccessService(access.store)), server)


def upgrade_access_database(settings: AuthSettings) -> str | None:
    """Upgrades the access database when access control is on; returns its URL (password hidden)."""
    if not settings.enabled:
        return None
    engine = create_db_engine(settings.database_url)
    upgrade(engine, MIGRATIONS_DIR)
    return engine.url.render_as_string(hide_password=True)
