"""Alembic environment of the tracking database (run by modelreg._service.db.upgrade)."""

from modelreg._service.db import run_migrations_in_env
from tracking_service.store.models import Base

run_migrations_in_env(Base.metadata)
