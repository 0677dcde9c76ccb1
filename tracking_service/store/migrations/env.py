"""Alembic environment of the tracking database (run by modelreg_server.db.upgrade)."""

from modelreg_server.db import run_migrations_in_env
from tracking_service.store.models import Base

run_migrations_in_env(Base.metadata)
