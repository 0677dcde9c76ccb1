"""``python -m tracking_service serve``, ``python -m tracking_service db upgrade`` and
``python -m tracking_service gc`` (see tracking_service.gc; ``modelreg gc`` runs it).

Start-up failures print one line on stderr, no traceback: exit code 2 for a wrong setting (bad
database URL, unknown artifact scheme, ...), 1 when what the settings name cannot be used
(database unreachable or not at the migration head, S3 endpoint or bucket unreachable, port in use).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys

from modelreg_server.db import create_db_engine, ensure_schema, upgrade
from modelreg_server.gc_options import add_gc_arguments
from modelreg_server.startup import run_service_command
from tracking_service.artifacts import ArtifactConfigError, open_artifact_store
from tracking_service.config import ConfigError, Settings
from tracking_service.gc import GarbageCollector, GcReport, GcRequest
from tracking_service.store import MIGRATIONS, UPGRADE_COMMAND

PROG = "tracking_service"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"python -m {PROG}", description="modelreg tracking service")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("serve", help="run the gRPC server (settings from MODELREG_* variables)")
    db = commands.add_parser("db", help="database schema management")
    db_commands = db.add_subparsers(dest="db_command", required=True)
    db_commands.add_parser("upgrade", help="upgrade the tracking database schema to the latest revision")
    gc = commands.add_parser(
        "gc",
        help="remove the files and rows of runs and experiments deleted long enough ago "
        "(never a registered version's files)",
    )
    add_gc_arguments(gc)
    gc.add_argument("--json", action="store_true", help="print the report as JSON")
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


def _gc(args: argparse.Namespace) -> GcReport:
    from tracking_service.store.sql import SqlTrackingStore

    settings = Settings.from_env()
    objects = open_artifact_store(settings.artifact_root, settings.s3, settings.extra_artifact_roots)
    objects.check()
    engine = create_db_engine(settings.database_url)
    ensure_schema(engine, MIGRATIONS, auto_upgrade=False, fix_command=UPGRADE_COMMAND)
    store = SqlTrackingStore(engine, settings.artifact_root)
    request = GcRequest(args.older_than.ms, args.experiment_ids, args.run_ids, args.dry_run)
    report = GarbageCollector(store, objects, settings.artifact_roots).collect(request)
    engine.dispose()
    if args.json:
        print(json.dumps({"older_than": args.older_than.text, **dataclasses.asdict(report)}, indent=2))
    else:
        _print_report(report)
    return report


def _print_report(report: GcReport) -> None:
    removed = "would remove" if report.dry_run else "removed"
    for run in report.removed_runs:
        print(
            f"{removed} run {run.run_id} (experiment {run.experiment_id}): {run.files} files, {run.bytes} bytes"
        )
    for experiment in report.removed_experiments:
        location = ", its artifact directory too" if experiment.location_removed else ""
        print(f"{removed} experiment {experiment.experiment_id}{location}")
    for kept in report.kept_runs:
        print(f"kept run {kept.run_id}: {kept.reason}")
    for kept_experiment in report.kept_experiments:
        print(f"kept experiment {kept_experiment.experiment_id}: {kept_experiment.reason}")
    print(
        f"{removed} {len(report.removed_runs)} runs ({report.files} files, {report.bytes} bytes) and "
        f"{len(report.removed_experiments)} experiments; kept {len(report.kept_runs)} runs and "
        f"{len(report.kept_experiments)} experiments"
    )


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    reports: list[GcReport] = []

    def collect() -> None:
        reports.append(_gc(args))

    command = {"serve": _serve, "db": _upgrade, "gc": collect}[args.command]
    code = run_service_command(
        PROG, command, settings_errors=(ConfigError,), startup_errors=(ArtifactConfigError,)
    )
    # Files that could not be removed: their runs are reported kept with the error, and exit 1.
    return 1 if code == 0 and reports and reports[0].failed else code


if __name__ == "__main__":
    sys.exit(main())
