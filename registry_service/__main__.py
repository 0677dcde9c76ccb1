"""Command line: ``python -m registry_service serve`` and ``python -m registry_service db upgrade``.

Start-up failures print one line on stderr, no traceback: exit code 2 for a wrong setting (named
by its variable), 1 when what the settings name cannot be used (database unreachable, schema not at
the migration head — the line names the command that upgrades it —, port in use).
"""

from __future__ import annotations

import argparse
import sys

from modelreg_server.db import create_db_engine, upgrade
from modelreg_server.startup import run_service_command
from registry_service.config import ConfigError, Settings
from registry_service.store import MIGRATIONS_DIR

PROG = "registry_service"


def _serve() -> None:
    from registry_service.server import serve  # grpc is only needed to serve

    serve(Settings.from_env())


def _upgrade() -> None:
    from modelreg_server.access.setup import upgrade_access_database

    settings = Settings.from_env()
    engine = create_db_engine(settings.database_url)
    upgrade(engine, MIGRATIONS_DIR)
    print(f"registry database schema is up to date ({engine.url.render_as_string(hide_password=True)})")
    access_url = upgrade_access_database(settings.auth)
    if access_url is not None:
        print(f"access database schema is up to date ({access_url})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=f"python -m {PROG}", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("serve", help="run the gRPC server (settings from MODELREG_* variables)")
    db = commands.add_parser("db", help="database schema commands")
    db.add_argument("action", choices=["upgrade"], help="upgrade the schema to the latest migration")
    args = parser.parse_args(argv)
    return run_service_command(
        PROG, _serve if args.command == "serve" else _upgrade, settings_errors=(ConfigError,)
    )


if __name__ == "__main__":
    sys.exit(main())
