"""``modelreg server``, ``modelreg mlflow-server``, ``modelreg db upgrade``, ``modelreg gc`` and
``modelreg tls init``: the commands the server distribution adds to the client's command line.

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
from modelreg_server.bootstrap import port_unavailable
from modelreg_server.gc_options import add_gc_arguments, gc_argv
from modelreg_server.launcher import (
    DEFAULT_DATA_DIR,
    DEFAULT_MLFLOW_PORT,
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


def _port_or_off(text: str) -> int:
    """An argparse type: a TCP port, or 0 for "do not start it"."""
    return 0 if text == "0" else _port(text)


def add_server_command(tree: CommandTree) -> None:
    server = tree.leaf(
        tree.commands,
        "server",
        cmd_server,
        "run both services with the embedded defaults (SQLite, local files), and the MLflow REST "
        "endpoint beside them",
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
    server.add_argument(
        "--mlflow-port",
        type=_port_or_off,
        default=DEFAULT_MLFLOW_PORT,
        help="port of the MLflow REST endpoint, for the unmodified mlflow client "
        "(MLFLOW_TRACKING_URI=http://127.0.0.1:PORT); 0 does not start it (default %(default)s)",
    )
    server.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR, help=DATA_DIR_HELP)


def add_mlflow_server_command(tree: CommandTree) -> None:
    # Imported lazily by the command itself (uvicorn, the app); the flags live with the settings.
    from mlflow_gateway.settings import add_arguments

    command = tree.leaf(
        tree.commands,
        "mlflow-server",
        cmd_mlflow_server,
        "run the MLflow REST endpoint alone, in front of running services: the unmodified mlflow "
        "client with MLFLOW_TRACKING_URI set to it. Also reads MODELREG_MLFLOW_* (TLS, limits)",
    )
    # --tracking-uri and --registry-uri: the command line's common options name the services.
    add_arguments(command, service_uris=False)


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


def add_gc_command(tree: CommandTree) -> None:
    gc = tree.leaf(
        tree.commands,
        "gc",
        cmd_gc,
        "remove the artifact files and rows of runs and experiments deleted long enough ago; "
        "runs a registered model version was made from are kept. Works on the tracking database "
        "and artifact store the tracking service's MODELREG_* settings name (else the embedded "
        "ones under --data-dir)",
    )
    add_gc_arguments(gc)
    gc.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR, help=DATA_DIR_HELP)


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
    ports = {"--tracking-port": args.tracking_port, "--registry-port": args.registry_port}
    if args.mlflow_port:
        ports["--mlflow-port"] = args.mlflow_port
    for flag, port in ports.items():
        others = [other for other, value in ports.items() if value == port and other != flag]
        if others:
            raise UsageError("SAME_PORT", f"{flag} and {others[0]} are both {port}")
    config = LaunchConfig(
        data_dir=args.data_dir,
        tracking_port=args.tracking_port,
        registry_port=args.registry_port,
        mlflow_port=args.mlflow_port or None,
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
    if config.mlflow_port is not None:
        out.line(f"mlflow    listening on {config.mlflow_url} (MLFLOW_TRACKING_URI)")
    out.line(f"data      {config.data_dir.resolve()}")
    out.line("Ctrl-C stops them.")
    out.stdout.flush()
    crashed = None
    while not stop.wait(0.5):
        crashed = services.exited()
        if crashed is not None:
            break
    services.stop()
    if crashed is not None:
        out.error(f"SERVICE_EXITED: the {crashed} service exited; the others are stopped")
        return EXIT_FAILED
    out.line("stopped")
    return EXIT_OK


def cmd_mlflow_server(args: argparse.Namespace, out: Output) -> int:
    from mlflow_gateway.server import serve
    from mlflow_gateway.settings import GatewaySettings

    try:
        settings = GatewaySettings.from_env().with_args(args)
    except ValueError as exc:
        raise UsageError("INVALID_SETTINGS", str(exc)) from None
    why = port_unavailable(settings.host, settings.port)
    if why is not None:
        out.error(
            f"PORT_UNAVAILABLE: cannot listen on {settings.host}:{settings.port}: {why}: choose another with --port"
        )
        return EXIT_FAILED

    def listening(url: str) -> None:
        out.line(f"mlflow    listening on {url} (MLFLOW_TRACKING_URI), calling")
        out.line(f"tracking  {settings.tracking_uri}")
        out.line(f"registry  {settings.registry_uri}")
        out.line("Ctrl-C stops it.")
        out.stdout.flush()

    serve(settings, on_listening=listening)
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


def cmd_gc(args: argparse.Namespace, out: Output) -> int:
    """Runs ``python -m tracking_service gc`` with the tracking service's settings, as ``db upgrade``
    runs the migrations, and passes on its report and exit code."""
    env = LaunchConfig(data_dir=args.data_dir).tracking_env()
    command = service_command(SERVICES["tracking"], "gc", *gc_argv(args, out.as_json))
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    out.stdout.write(done.stdout)
    out.stderr.write(done.stderr)
    return done.returncode


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
