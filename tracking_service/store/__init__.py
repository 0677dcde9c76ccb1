"""Persistence of the tracking service: the TrackingStore Protocol, its SQLAlchemy implementation
and the Alembic migrations that own the schema."""

from tracking_service.store.base import TrackingStore

MIGRATIONS = "tracking_service:store/migrations"
UPGRADE_COMMAND = "python -m tracking_service db upgrade"

__all__ = ["MIGRATIONS", "UPGRADE_COMMAND", "TrackingStore"]
