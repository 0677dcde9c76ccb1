"""Alembic environment of the access database (online mode only)."""

from modelreg_server.access.schema import Base
from modelreg_server.db import run_migrations_in_env

run_migrations_in_env(Base.metadata)
