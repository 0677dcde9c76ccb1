"""``modelreg server``, ``modelreg db upgrade`` and ``modelreg tls init``: the commands the server
distribution adds to the client's command line.

The client's CLI (``modelreg.cli``) loads them through the ``modelreg.commands`` entry points
declared in this distribution's pyproject.toml, so the client never imports server code and, when
only the client is installed, says what to install instead. Each entry point adds one top-level
command to the :class:`~modelreg.cli.CommandTree` it is given.
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import threading
from pathlib import Path

from modelreg.cli import EXIT_FAILED, EXIT_OK, CommandTree, Output, UsageError
from modelreg_server.launcher import (
    DEFAULT_DATA_DIR,
    DEFAULT_REGISTRY_PORT,
    DEFAULT_TRACKING_PORT,
    LaunchConfig,
    LaunchError,
    PortUnavailable,
    Services,
    service_command,
)

# The services' modules, run as `python -m <module>`: modelreg_server never imports them.
SERVICES = {"tracking": "tracking_service", "registry": "registry_service"}

DATA_DIR_HELP = "where the embedded databases and artifacts live (default %(default)s)"


def _port(text: str) -> int:
    """An argparse type: a TCP port, 1-65535 (0, "any free port", would leave clients guessing)."""
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (1-65535)")
    return int(text)


def add_server_command(tree: CommandTree) -> None:
    server = tree.leaf(
        tree.commands,
        "server",
        cmd_server,
        "run both services with the embedded defaults (SQLite, local files)",
    )
    server.add_argument(
        "--tracking-port",
        type=_port,
        default=DEFAULT_TRACKING_PORT,
        help="port of the tracking service (default %(default)s)",
    )
    server.add_argument(
        "--registry-port",
        type=_port,
        default=DEFAULT_REGISTRY_PORT,
        help="port of the registry service (default %(default)s)",
    )
    server.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR, help=DATA_DIR_HELP)


def add_db_command(tree: CommandTree) -> None:
    db = tree.group("db", "database maintenance")
    upgrade = tree.leaf(db, "upgrade", cmd_db_upgrade, "apply the schema migrations (idempotent)")
    upgrade.add_argument(
        "service",
        nargs="?",
        choices=["tracking", "registry", "all"],
        default="all",
        help="whose database (default %(default)s)",
    )
    upgrade.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR, help=DATA_DIR_HELP)


def add_tls_command(tree: CommandTree) -> None:
    tls = tree.group("tls", "TLS certificates for local use")
    init = tree.leaf(
        tls, "init", cmd_tls_init, "write a local CA and a server and a client certificate it signed"
    )
    init.add_argument("--dir", type=Path, required=True, dest="directory", help="where the files go")
    init.add_argument(
        "--host",
        action="append",
        default=[],
        help="a DNS name or IP address the server certificate holds (repeatable); "
        "localhost and 127.0.0.1 always",
    )
    existing = init.add_mutually_exclusive_group()
    existing.add_argument("--force", action="store_true", help="replace existing files")
    existing.add_argument(
        "--keep-existing",
        action="store_true",
        help="succeed without writing when DIR already holds a CA (a one-shot step run again)",
    )


def cmd_server(args: argparse.Namespace, out: Output) -> int:
    if args.tracking_port == args.registry_port:
        raise UsageError("SAME_PORT", f"--tracking-port and --registry-port are both {args.tracking_port}")
    config = LaunchConfig(
        data_dir=args.data_dir, tracking_port=args.tracking_port, registry_port=args.registry_port
    )
    stop = threading.Event()

    def request_stop(_signum: int, _frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    services = Services(config)
    try:
        services.start()
    except PortUnavailable as exc:
        out.error(f"PORT_UNAVAILABLE: {exc}: choose another with --{exc.service}-port")
        return EXIT_FAILED
    except LaunchError as exc:
        out.error(f"SERVER_START_FAILED: {exc}")
        return EXIT_FAILED
    out.line(f"tracking  listening on {config.tracking_target}")
    out.line(f"registry  listening on {config.registry_target}")
    out.line(f"data      {config.data_dir.resolve()}")
    out.line("Ctrl-C stops both.")
    out.stdout.flush()
    crashed = None
    while not stop.wait(0.5):
        crashed = services.exited()
        if crashed is not None:
            break
    services.stop()
    if crashed is not None:
        out.error(f"SERVICE_EXITED: the {crashed} service exited; both are stopped")
        return EXIT_FAILED
    out.line("stopped")
    return EXIT_OK


def cmd_db_upgrade(args: argparse.Namespace, out: Output) -> int:
    config = LaunchConfig(data_dir=args.data_dir)
    config.data_dir.mkdir(parents=True, exist_ok=True)
    envs = {"tracking": config.tracking_env(), "registry": config.registry_env()}
    targets = list(SERVICES) if args.service == "all" else [args.service]
    for name in targets:
        done = subprocess.run(service_command(SERVICES[name], "db", "upgrade"), env=envs[name], check=False)
        if done.returncode != 0:
            out.error(f"MIGRATION_FAILED: {name} database upgrade exited with {done.returncode}")
            return EXIT_FAILED
        out.line(f"{name}: database at head")
    return EXIT_OK


def cmd_tls_init(args: argparse.Namespace, out: Output) -> int:
    # Imported here: every `modelreg` command loads this module, few need cryptography.
    from modelreg_server.tls import write_local_certificates

    if args.keep_existing and (args.directory / "ca.pem").exists():
        out.line(f"kept the certificates in {args.directory.resolve()}")
        return EXIT_OK
    try:
        paths = write_local_certificates(args.directory, args.host, force=args.force)
    except FileExistsError as exc:
        out.error(f"FILES_EXIST: {exc}")
        return EXIT_FAILED
    files = {name: str(path.resolve()) for name, path in paths.items()}
    if out.as_json:
        out.json(files)
        return EXIT_OK
    out.fields(list(files.items()))
    out.line()
    out.line(
        f"server:  MODELREG_TLS_CERT_FILE={files['server.pem']} MODELREG_TLS_KEY_FILE={files['server-key.pem']}"
    )
    out.line(f"         MODELREG_TLS_CLIENT_CA_FILE={files['ca.pem']} (mTLS: require client certificates)")
    out.line(f"clients: MODELREG_CA_FILE={files['ca.pem']}, targets grpcs://host:port")
    out.line(
        f"         MODELREG_CLIENT_CERT_FILE={files['client.pem']} MODELREG_CLIENT_KEY_FILE={files['client-key.pem']} (mTLS)"
    )
    return EXIT_OK
