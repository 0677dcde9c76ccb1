"""``python -m tracking_service serve`` and ``python -m tracking_service db upgrade``.

Start-up failures (bad settings, unreachable database, schema not at head, unusable artifact
root) print one line on stderr, no traceback: exit code 2 for settings, 1 for the rest.
"""

from __future__ import annotations

import argparse
import sys

import sqlalchemy as sa
from alembic.util.exc import CommandError

from modelreg._service.db import SchemaOutOfDate, create_db_engine, upgrade
from tracking_service.artifacts import ArtifactConfigError
from tracking_service.config import ConfigError, Settings
from tracking_service.store import MIGRATIONS

EXIT_STARTUP = 1
EXIT_SETTINGS = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tracking_service", description="modelreg tracking service"
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("serve", help="run the gRPC server (settings from MODELREG_* variables)")
    db = commands.add_parser("db", help="database schema management")
    db_commands = db.add_subparsers(dest="db_command", required=True)
    db_commands.add_parser("upgrade", help="upgrade the tracking database schema to the latest revision")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = Settings.from_env()
        if args.command == "serve":
            from tracking_service.server import serve

            serve(settings)
        else:
            engine = create_db_engine(settings.database_url)
            upgrade(engine, MIGRATIONS)
            print(
                f"tracking database schema is up to date ({engine.url.render_as_string(hide_password=True)})"
            )
        return 0
    except (ConfigError, ArtifactConfigError, sa.exc.ArgumentError, sa.exc.NoSuchModuleError) as exc:
        print(f"tracking_service: invalid settings: {exc}", file=sys.stderr)
        return EXIT_SETTINGS
    except (SchemaOutOfDate, CommandError) as exc:
        print(f"tracking_service: {exc}", file=sys.stderr)
        return EXIT_STARTUP
    except (sa.exc.OperationalError, OSError) as exc:
        print(f"tracking_service: cannot start: {str(exc).splitlines()[0]}", file=sys.stderr)
        return EXIT_STARTUP


if __name__ == "__main__":
    sys.exit(main())
