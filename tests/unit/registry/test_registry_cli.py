"""Settings and the command line: `python -m registry_service serve | db upgrade`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from modelreg_server.db import create_db_engine, current_revision, upgrade
from registry_service.config import ConfigError, Settings
from registry_service.store import MIGRATIONS_DIR
from registry_service.store.schema import Base
from tests.conftest import Backend


def test_defaults_and_overrides() -> None:
    assert Settings.from_env({}) == Settings()
    settings = Settings.from_env(
        {
            "MODELREG_REGISTRY_PORT": "6000",
            "MODELREG_TRACKING_TARGET": "tracking:50051",
            "MODELREG_TRACKING_TIMEOUT_SECONDS": "2.5",
            "MODELREG_AUTO_MIGRATE": "false",
            "MODELREG_LOG_FORMAT": "JSON",
            "MODELREG_SERVING_REPORTS_PER_MINUTE": "50",
        }
    )
    assert (settings.port, settings.tracking_target, settings.tracking_timeout_seconds) == (
        6000,
        "tracking:50051",
        2.5,
    )
    assert (settings.auto_migrate, settings.json_logs) == (False, True)
    assert settings.serving_reports_per_minute == 50


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("MODELREG_REGISTRY_PORT", "http"),
        ("MODELREG_REGISTRY_PORT", "70000"),
        ("MODELREG_TRACKING_TIMEOUT_SECONDS", "0"),
        ("MODELREG_REGISTRY_WORKERS", "0"),
        ("MODELREG_AUTO_MIGRATE", "maybe"),
        ("MODELREG_LOG_LEVEL", "LOUD"),
        ("MODELREG_REGISTRY_DATABASE_URL", "not a url"),
        ("MODELREG_SERVING_REPORTS_PER_MINUTE", "0"),
    ],
)
def test_bad_settings_are_config_errors(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        Settings.from_env({name: value})


def _run(args: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "registry_service", *args],
        env={**os.environ, "MODELREG_LOG_LEVEL": "WARNING", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_bad_settings_exit_2_with_one_line(tmp_path: Path) -> None:
    result = _run(["serve"], MODELREG_REGISTRY_PORT="http")
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and "MODELREG_REGISTRY_PORT" in result.stderr


def test_out_of_date_schema_is_refused_until_db_upgrade(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'registry.db'}"
    refused = _run(["serve"], MODELREG_REGISTRY_DATABASE_URL=url, MODELREG_AUTO_MIGRATE="false")
    assert refused.returncode == 1
    assert "python -m registry_service db upgrade" in refused.stderr
    upgraded = _run(["db", "upgrade"], MODELREG_REGISTRY_DATABASE_URL=url)
    assert upgraded.returncode == 0, upgraded.stderr
    engine = create_db_engine(url)
    assert current_revision(engine) is not None
    assert "model_versions" in sa.inspect(engine).get_table_names()
    engine.dispose()


def test_migrations_match_the_models(backend: Backend) -> None:
    """Alembic's head builds exactly the tables the ORM describes (no forgotten migration)."""
    engine = create_db_engine(backend.url)
    upgrade(engine, MIGRATIONS_DIR)
    with engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []
    engine.dispose()
