"""Persistence of the registry: the storage Protocol, its SQLAlchemy implementation, migrations."""

from pathlib import Path

MIGRATIONS_DIR = str(Path(__file__).parent / "migrations")
