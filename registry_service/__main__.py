"""Command line: ``python -m registry_service serve`` and ``python -m registry_service db upgrade``.

Bad settings print one line on stderr and exit with code 2. A database schema that is not at the
migration head (naming the command that upgrades it), an unreachable database or a port in use
print one line and exit with code 1.
"""

from __future__ import annotations

import argparse
import sys

import sqlalchemy as sa

from modelreg._service.db import SchemaOutOfDate, create_db_engine, upgrade
from registry_service.config import ConfigError, Settings
from registry_service.store import MIGRATIONS_DIR


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m registry_service", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("serve", help="run the gRPC server (settings from MODELREG_* variables)")
    db = commands.add_parser("db", help="database schema commands")
    db.add_argument("action", choices=["upgrade"], help="upgrade the schema to the latest migration")
    args = parser.parse_args(argv)

    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        print(f"registry_service: configuration error: {exc}", file=sys.stderr)
        return 2
    try:
        if args.command == "db":
            engine = create_db_engine(settings.database_url)
            upgrade(engine, MIGRATIONS_DIR)
            print(f"registry database schema upgraded: {engine.url.render_as_string(hide_password=True)}")
            return 0
        from registry_service.server import serve  # grpc is only needed to serve

        serve(settings)
    except (SchemaOutOfDate, OSError) as exc:
        print(f"registry_service: {exc}", file=sys.stderr)
        return 1
    except sa.exc.OperationalError as exc:
        print(f"registry_service: cannot use the database: {exc.orig}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
