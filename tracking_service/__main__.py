"""``python -m tracking_service serve`` and ``python -m tracking_service db upgrade``.

Start-up failures print one line on stderr, no traceback: exit code 2 for a wrong setting (bad
database URL, unknown artifact scheme, ...), 1 when what the settings name cannot be used
(database unreachable or not at the migration head, S3 endpoint or bucket unreachable, port in use).
"""

from __future__ import annotations

import argparse
import sys

from modelreg_server.db import create_db_engine, upgrade
from modelreg_server.startup import run_service_command
from tracking_service.artifacts import ArtifactConfigError
from tracking_service.config import ConfigError, Settings
from tracking_service.store import MIGRATIONS

PROG = "tracking_service"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"python -m {PROG}", description="modelreg tracking service")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("serve", help="run the gRPC server (settings from MODELREG_* variables)")
    db = commands.add_parser("db", help="database schema management")
    db_commands = db.add_subparsers(dest="db_command", required=True)
    db_commands.add_parser("upgrade", help="upgrade the tracking database schema to the latest revision")
    return parser


def _serve() -> None:
    from tracking_service.server import serve  # grpc is only needed to serve

    serve(Settings.from_env())


def _upgrade() -> None:
    from modelreg_server.access.setup import upgrade_access_database

    settings = Settings.from_env()
    engine = create_db_engine(settings.database_url)
    upgrade(engine, MIGRATIONS)
    print(f"tracking database schema is up to date ({engine.url.render_as_string(hide_password=True)})")
    access_url = upgrade_access_database(settings.auth)
    if access_url is not None:
        print(f"access database schema is up to date ({access_url})")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    return run_service_command(
        PROG,
        _serve if args.command == "serve" else _upgrade,
        settings_errors=(ConfigError,),
        startup_errors=(ArtifactConfigError,),
    )


if __name__ == "__main__":
    sys.exit(main())
