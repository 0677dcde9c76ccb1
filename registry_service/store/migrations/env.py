"""Alembic environment of the registry database (online mode only)."""

from modelreg._service.db import run_migrations_in_env
from registry_service.store.schema import Base

run_migrations_in_env(Base.metadata)
