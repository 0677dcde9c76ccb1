"""Alembic environment of the registry database (online mode only)."""

from modelreg_server.db import run_migrations_in_env
from registry_service.store.schema import Base

run_migrations_in_env(Base.metadata)
