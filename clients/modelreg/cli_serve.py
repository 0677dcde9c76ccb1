"""``modelreg serve MODEL_URI``: a registered model behind MLflow's scoring protocol over HTTP.

Needs the ``serve`` extra (``pip install 'modelreg[serve,sklearn]'``). The model comes through the
client's targets (``--tracking-uri`` / ``--registry-uri``, as every command); ``models:/Name@alias``,
``/Stage`` and ``/latest`` URIs are followed and swapped in place (:mod:`modelreg.serving.slot`).
Logs are JSON lines on stderr (:mod:`modelreg.serving.logs`).

With ``--workers N`` uvicorn runs N processes, each loading the model itself: the command first
loads it once (so a model that cannot be served fails the command at once, with one line, and the
workers load from the warm cache), then hands uvicorn :func:`app_from_env`, which reads what this
process put in the environment (``MODELREG_SERVE_*``). SIGTERM or Ctrl-C stops accepting
connections, lets the requests in flight finish (up to ``GRACEFUL_SHUTDOWN_SECONDS``), then stops
the slot; one process then ends by the signal (status 143), as uvicorn does, N workers with 0.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from modelreg.cli import EXIT_FAILED, EXIT_OK, CommandTree, Output, UsageError, positive_int, target
from modelreg.client import Client

ENV_MODEL_URI = "MODELREG_SERVE_MODEL_URI"
ENV_MAX_BODY_BYTES = "MODELREG_SERVE_MAX_BODY_BYTES"
DEFAULT_PORT = 5001
# How long a stopping server waits for the requests in flight before closing their connections.
GRACEFUL_SHUTDOWN_SECONDS = 30


def port_number(text: str) -> int:
    """An argparse type: a TCP port, 0 (any free port) to 65535."""
    if not text.isdigit() or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (0 to 65535)")
    return int(text)


def add_serve_command(tree: CommandTree) -> None:
    serve = tree.leaf(
        tree.commands,
        "serve",
        cmd_serve,
        "serve a model over HTTP with MLflow's scoring protocol (POST /invocations), following aliases and stages",
    )
    serve.add_argument(
        "model_uri",
        metavar="MODEL_URI",
        help="models:/Name@alias, models:/Name/Production, models:/Name/3, runs:/<id>/path",
    )
    serve.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on; 0.0.0.0 for every interface (default %(default)s)",
    )
    serve.add_argument(
        "--port", type=port_number, default=DEFAULT_PORT, help="TCP port to listen on (default %(default)s)"
    )
    serve.add_argument(
        "--workers",
        type=positive_int,
        default=1,
        help="server processes, each with its own copy of the model and its own /metrics (default %(default)s)",
    )
    serve.add_argument(
        "--max-body-bytes",
        type=positive_int,
        default=None,
        help="larger /invocations bodies are refused with 413 (default: 16777216, 16 MiB)",
    )


def _settings_env(args: argparse.Namespace, max_body_bytes: int) -> dict[str, str]:
    return {
        ENV_MODEL_URI: args.model_uri,
        ENV_MAX_BODY_BYTES: str(max_body_bytes),
        "MODELREG_TRACKING_URI": target(args, "tracking"),
        "MODELREG_REGISTRY_URI": target(args, "registry"),
    }


def _started_slot(model_uri: str, client: Client, metrics: Any) -> Any:
    """A ModelSlot whose events feed ``metrics`` and the log, after its initial load."""
    # Imported here: the slot module is the serving package's; importing it at the top would make
    # every `modelreg` command need the serve extra.
    from modelreg.serving import logs
    from modelreg.serving.slot import ModelSlot

    def on_event(event: Any) -> None:
        metrics.on_event(event)
        logs.log_event(event)

    slot = ModelSlot(model_uri, client, on_event=on_event)
    slot.start()
    return slot


def cmd_serve(args: argparse.Namespace, out: Output) -> int:
    try:
        import uvicorn

        from modelreg.serving import logs
        from modelreg.serving.app import CONNECTION_LIMIT, ServeSettings, create_app
        from modelreg.serving.metrics import ServingMetrics
        from modelreg.serving.slot import ServingLoadError
    except ImportError as exc:
        raise UsageError("SERVE_NOT_INSTALLED", f"{exc}: pip install 'modelreg[serve]'") from None
    logs.configure()
    settings = (
        ServeSettings() if args.max_body_bytes is None else ServeSettings(max_body_bytes=args.max_body_bytes)
    )
    env = _settings_env(args, settings.max_body_bytes)
    client = Client(env["MODELREG_TRACKING_URI"], env["MODELREG_REGISTRY_URI"])
    metrics = ServingMetrics()
    try:
        slot = _started_slot(args.model_uri, client, metrics)
    except ServingLoadError as exc:
        out.error(f"SERVING_LOAD_FAILED: {exc}")
        return EXIT_FAILED
    common: dict[str, Any] = {
        "host": args.host,
        "port": args.port,
        "log_config": None,
        "access_log": False,
        "timeout_graceful_shutdown": GRACEFUL_SHUTDOWN_SECONDS,
        "limit_concurrency": CONNECTION_LIMIT,
    }
    if args.workers > 1:
        slot.stop()  # the check and the cache warm-up are done: each worker loads its own
        del slot  # nor does this process keep a copy while its workers serve
        os.environ.update(env)
        uvicorn.run("modelreg.cli_serve:app_from_env", factory=True, workers=args.workers, **common)
        return EXIT_OK
    try:
        app = create_app(slot, settings, metrics)
        uvicorn.Server(uvicorn.Config(app, **common)).run()
    finally:
        slot.stop()
    return EXIT_OK


def app_from_env() -> Any:
    """uvicorn's factory for ``--workers N``: one worker's app, from ``MODELREG_SERVE_*``."""
    from modelreg.serving import logs
    from modelreg.serving.app import ServeSettings, create_app
    from modelreg.serving.metrics import ServingMetrics

    logs.configure()
    metrics = ServingMetrics()
    slot = _started_slot(os.environ[ENV_MODEL_URI], Client(), metrics)
    return create_app(slot, ServeSettings(max_body_bytes=int(os.environ[ENV_MAX_BODY_BYTES])), metrics)
