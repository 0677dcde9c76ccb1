"""The ``modelreg`` command line.

Tables for people, ``--json`` for scripts. Exit codes scripts can trust:

- 0: done;
- 1: the service (or the client's own check) refused: not found, invalid, integrity failure...;
- 2: usage error (unknown command, missing argument);
- 3: a service is unavailable or did not answer in time.

Errors print one line on stderr, ``error: <REASON>: <message>``; ``--verbose`` adds the traceback.
Everything a server sent is printed with its control characters escaped (:func:`printable`), so a
name cannot drive the terminal; ``--json`` output is JSON-escaped. When the reader of stdout goes
away (``modelreg models list | head -1``) the command stops silently with exit status 141, as a
Unix tool killed by SIGPIPE does.
Targets come from ``--tracking-uri`` / ``--registry-uri``, else ``MODELREG_TRACKING_URI`` /
``MODELREG_REGISTRY_URI``, else localhost:50051 / localhost:50052. Options may come before or
after the command. With access control on, ``MODELREG_TOKEN`` authenticates every command; a refusal
for missing or bad credentials says so. The access-control commands (``whoami``, ``users``,
``tokens``, ``permissions``, ``models protect``, ``access events``) live in :mod:`modelreg.cli_access`,
the promotion commands (``gates``, ``promote``, ``approvals``) in :mod:`modelreg.cli_gates`,
``serve`` (a model over HTTP) in :mod:`modelreg.cli_serve`.

``modelreg server``, ``modelreg db upgrade``, ``modelreg gc`` and ``modelreg tls init`` belong to the server
distribution (``modelreg-server``), which adds them through the ``modelreg.commands`` entry point
group; this module never imports server code. Without it they exit 2 naming what to install.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import sys
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import Any, TextIO

from modelreg import config, wire
from modelreg import entities as e
from modelreg._grpc import parse_target
from modelreg.client import Client
from modelreg.exceptions import (
    DeadlineExceeded,
    InvalidArgument,
    ModelregError,
    PermissionDenied,
    Unauthenticated,
    Unavailable,
)
from modelreg.uris import MODELS_SCHEME, RUNS_SCHEME, parse_model_uri

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_UNAVAILABLE = 0, 1, 2, 3
# 128 + SIGPIPE: what a shell reports for a Unix tool stopped by a closed pipe (`seq 1e6 | head -1`).
EXIT_CLOSED_PIPE = 141

Handler = Callable[[argparse.Namespace, "Output"], int]

# An entry point in this group names a callable taking a CommandTree, which adds one command.
COMMANDS_GROUP = "modelreg.commands"
SERVER_DISTRIBUTION = "modelreg-server"
# The commands the server distribution adds, known here only to say what to install without it:
# name -> (help, whether it is a group whose action the message names too, as in `db upgrade`).
SERVER_COMMANDS = {
    "server": ("run both services with the embedded defaults (SQLite, local files)", False),
    "db": ("database maintenance", True),
    "gc": ("remove the files and rows of runs and experiments deleted long enough ago", False),
    "tls": ("TLS certificates for local use", True),
    "mlflow-server": ("run the MLflow REST endpoint in front of running services", False),
}


class UsageError(Exception):
    """A mistake in what was typed or set that argparse cannot see: ``error: REASON: message``, exit 2."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")


# Output

# C0 controls, DEL and C1 controls (ESC and CSI among them: what drives a terminal), the line and
# paragraph separators, and the bidirectional overrides that make text display in another order.
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]")
_NAMED_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    if char in _NAMED_ESCAPES:
        return _NAMED_ESCAPES[char]
    return f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}"


def printable(text: str) -> str:
    """``text`` with every character that could move the cursor, recolour or retitle the terminal,
    break a table row or reorder what is displayed written as a visible escape (``\\x1b``, ``\\n``)."""
    return _UNPRINTABLE.sub(_escape, text)


class Output:
    def __init__(self, stdout: TextIO, stderr: TextIO, as_json: bool) -> None:
        self.stdout = stdout
        self.stderr = stderr
        self.as_json = as_json

    def json(self, value: Any) -> None:
        print(json.dumps(_plain(value), indent=2, sort_keys=False), file=self.stdout)

    def table(self, headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
        cells = [[_cell(v) for v in row] for row in rows]
        widths = [max([len(h), *(len(row[i]) for row in cells)]) for i, h in enumerate(headers)]
        for row in [list(headers), *cells]:
            print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip(), file=self.stdout)

    def fields(self, pairs: Sequence[tuple[str, object]]) -> None:
        width = max(len(k) for k, _ in pairs)
        for key, value in pairs:
            print(f"{key.ljust(width)}  {_cell(value)}", file=self.stdout)

    def line(self, text: str = "") -> None:
        print(printable(text), file=self.stdout)

    def error(self, message: str) -> None:
        """One ``error: REASON: message`` line on stderr."""
        print(f"error: {printable(message)}", file=self.stderr)


def _plain(value: Any) -> Any:
    """Entities (frozen dataclasses, mappings, lists) as JSON-ready values; version numbers are
    JSON numbers."""
    if isinstance(value, e.Version):
        return int(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, list | tuple):
        text = ",".join(str(v) for v in value) or "-"
    elif isinstance(value, Mapping):
        text = ", ".join(f"{k}={v}" for k, v in value.items()) or "-"
    else:
        text = str(value)
    return printable(text)


def _time(ms: int | None) -> str:
    if not ms:
        return "-"
    return datetime.fromtimestamp(ms / 1000).strftime("%Y-%m-%d %H:%M:%S")


class ProgressBar:
    """A progress bar drawn on stderr, only when stderr is a terminal."""

    def __init__(self, stream: TextIO, label: str) -> None:
        self.stream = stream
        self.label = label
        self.enabled = stream.isatty()
        self._last = 0.0

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if not self.enabled or (now - self._last < 0.1 and done < total):
            return
        self._last = now
        fraction = done / total if total else 1.0
        filled = int(30 * fraction)
        bar = "#" * filled + "." * (30 - filled)
        mib = 1024 * 1024
        self.stream.write(f"\r{self.label} [{bar}] {fraction:4.0%} {done / mib:.1f}/{total / mib:.1f} MiB")
        self.stream.flush()

    def finish(self) -> None:
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()


# Commands that talk to the services


def target(args: argparse.Namespace, service: str) -> str:
    """The ``--SERVICE-uri`` target, else the environment's or the default; a malformed one is a
    usage error naming the flag or variable it came from."""
    given: str | None = getattr(args, f"{service}_uri", None)
    uri = given or config.default_uri(service)
    try:
        parse_target(uri)
    except ValueError:
        source = f"--{service}-uri" if given else f"MODELREG_{service.upper()}_URI"
        raise UsageError(
            "INVALID_TARGET",
            f"{source} {uri!r} is not a gRPC target: use host:port, grpc://host:port or grpcs://host:port",
        ) from None
    return uri


def _client(args: argparse.Namespace) -> Client:
    return Client(target(args, "tracking"), target(args, "registry"))


def _require_model(client: Client, name: str, version: str | None = None) -> None:
    """Raises NotFound for an unknown model (or version): called when a listing for it came back
    empty, so a misspelt name is an error rather than an empty table."""
    if version is None:
        client.get_registered_model(name)
    else:
        client.get_model_version(name, version)


def cmd_experiments_list(args: argparse.Namespace, out: Output) -> int:
    view = "ALL" if args.all else "ACTIVE_ONLY"
    experiments = _client(args).search_experiments(view_type=view, filter_string=args.filter)
    if out.as_json:
        out.json(experiments)
    else:
        out.table(
            ["ID", "NAME", "STAGE", "CREATED", "ARTIFACT_LOCATION"],
            [
                (x.experiment_id, x.name, x.lifecycle_stage, _time(x.creation_time), x.artifact_location)
                for x in experiments
            ],
        )
    return EXIT_OK


def cmd_experiments_show(args: argparse.Namespace, out: Output) -> int:
    client = _client(args)
    ref: str = args.experiment
    experiment = client.get_experiment(ref) if ref.isdigit() else client.tracking.get_experiment_by_name(ref)
    if out.as_json:
        out.json(experiment)
        return EXIT_OK
    out.fields(
        [
            ("experiment_id", experiment.experiment_id),
            ("name", experiment.name),
            ("lifecycle_stage", experiment.lifecycle_stage),
            ("artifact_location", experiment.artifact_location),
            ("created", _time(experiment.creation_time)),
            ("last_updated", _time(experiment.last_update_time)),
            ("tags", dict(experiment.tags)),
        ]
    )
    return EXIT_OK


def cmd_runs_list(args: argparse.Namespace, out: Output) -> int:
    client = _client(args)
    runs = client.search_runs(args.experiment_id or [], args.filter or "", max_results=args.max_results)
    if not runs:
        for experiment_id in args.experiment_id or []:
            client.get_experiment(experiment_id)  # an unknown experiment is NOT_FOUND, not an empty table
    if out.as_json:
        out.json(runs)
    else:
        out.table(
            ["RUN_ID", "NAME", "STATUS", "EXPERIMENT", "STARTED", "METRICS"],
            [
                (
                    r.info.run_id,
                    r.info.run_name,
                    r.info.status,
                    r.info.experiment_id,
                    _time(r.info.start_time),
                    dict(r.data.metrics),
                )
                for r in runs
            ],
        )
    return EXIT_OK


def cmd_runs_show(args: argparse.Namespace, out: Output) -> int:
    run = _client(args).get_run(args.run_id)
    if out.as_json:
        out.json(run)
        return EXIT_OK
    info = run.info
    out.fields(
        [
            ("run_id", info.run_id),
            ("run_name", info.run_name),
            ("experiment_id", info.experiment_id),
            ("status", info.status),
            ("started", _time(info.start_time)),
            ("ended", _time(info.end_time)),
            ("lifecycle_stage", info.lifecycle_stage),
            ("parent_run_id", info.parent_run_id),
            ("artifact_uri", info.artifact_uri),
            ("params", dict(run.data.params)),
            ("metrics", dict(run.data.metrics)),
            ("tags", dict(run.data.tags)),
        ]
    )
    return EXIT_OK


def cmd_models_list(args: argparse.Namespace, out: Output) -> int:
    models = _client(args).search_registered_models(filter_string=args.filter)
    if out.as_json:
        out.json(models)
    else:
        out.table(
            ["NAME", "LATEST_VERSIONS", "ALIASES", "UPDATED", "DESCRIPTION"],
            [
                (
                    m.name,
                    [f"{v.current_stage}:v{v.version}" for v in m.latest_versions],
                    {a: f"v{v}" for a, v in m.aliases.items()},
                    _time(m.last_updated_timestamp),
                    m.description,
                )
                for m in models
            ],
        )
    return EXIT_OK


def cmd_models_show(args: argparse.Namespace, out: Output) -> int:
    model = _client(args).get_registered_model(args.name)
    if out.as_json:
        out.json(model)
        return EXIT_OK
    out.fields(
        [
            ("name", model.name),
            ("description", model.description),
            ("created", _time(model.creation_timestamp)),
            ("last_updated", _time(model.last_updated_timestamp)),
            ("tags", dict(model.tags)),
            ("aliases", {a: f"v{v}" for a, v in model.aliases.items()}),
        ]
    )
    out.line()
    _versions_table(out, model.latest_versions)
    return EXIT_OK


def _versions_table(out: Output, versions: Sequence[e.ModelVersion]) -> None:
    out.table(
        ["VERSION", "STAGE", "ALIASES", "STATUS", "RUN_ID", "CREATED", "SOURCE"],
        [
            (v.version, v.current_stage, v.aliases, v.status, v.run_id, _time(v.creation_timestamp), v.source)
            for v in versions
        ],
    )


def cmd_versions_list(args: argparse.Namespace, out: Output) -> int:
    clauses = [f"name = {wire.quote(args.name)}"] if args.name else []
    if args.filter:
        clauses.append(args.filter)
    client = _client(args)
    versions = client.search_model_versions(filter_string=" and ".join(clauses))
    if not versions and args.name:
        _require_model(client, args.name)
    if out.as_json:
        out.json(versions)
    else:
        _versions_table(out, versions)
    return EXIT_OK


def cmd_versions_show(args: argparse.Namespace, out: Output) -> int:
    version = _client(args).get_model_version(args.name, args.version)
    if out.as_json:
        out.json(version)
        return EXIT_OK
    out.fields(
        [
            ("name", version.name),
            ("version", version.version),
            ("stage", version.current_stage),
            ("status", version.status),
            ("aliases", version.aliases),
            ("source", version.source),
            ("run_id", version.run_id),
            ("registered_by", version.user_id),
            ("created", _time(version.creation_timestamp)),
            ("last_updated", _time(version.last_updated_timestamp)),
            ("description", version.description),
            ("tags", dict(version.tags)),
        ]
    )
    lineage = version.lineage
    if lineage is not None:
        out.line()
        out.fields(
            [
                (
                    "lineage.run",
                    f"{lineage.run_name} ({lineage.run_id}) in experiment {lineage.experiment_id}",
                ),
                ("lineage.params", dict(lineage.params)),
                ("lineage.metrics", dict(lineage.metrics)),
                ("lineage.run_tags", dict(lineage.run_tags)),
            ]
        )
        out.line()
        out.table(["FILE", "SIZE", "SHA256"], [(f.path, f.size, f.sha256) for f in lineage.files])
    return EXIT_OK


def cmd_versions_transition(args: argparse.Namespace, out: Output) -> int:
    version = _client(args).transition_model_version_stage(
        args.name,
        args.version,
        args.stage,
        archive_existing_versions=not args.no_archive,
        comment=args.comment,
    )
    if out.as_json:
        out.json(version)
    else:
        out.line(f"{version.name} version {version.version} is now in {version.current_stage}")
    return EXIT_OK


def cmd_versions_seal(args: argparse.Namespace, out: Output) -> int:
    results = _client(args).seal_registered_versions(args.model)
    if out.as_json:
        out.json(results)
    else:
        out.table(
            ["NAME", "VERSION", "RUN_ID", "PATH", "STATUS", "FILES", "ERROR"],
            [
                (
                    r.name,
                    r.version,
                    r.run_id,
                    r.artifact_path,
                    r.status,
                    r.files,
                    f"{r.code} {r.reason}: {r.message}" if r.status == "FAILED" else None,
                )
                for r in results
            ],
        )
    failed = sum(r.status == "FAILED" for r in results)
    if failed:
        out.error(f"SEAL_FAILED: {failed} of {len(results)} versions are not sealed")
        return EXIT_FAILED
    return EXIT_OK


def cmd_alias_set(args: argparse.Namespace, out: Output) -> int:
    _client(args).set_registered_model_alias(args.name, args.alias, args.version)
    if out.as_json:
        out.json({"name": args.name, "alias": args.alias, "version": int(args.version)})
    else:
        out.line(f"{args.name}@{args.alias} -> version {args.version}")
    return EXIT_OK


def cmd_alias_delete(args: argparse.Namespace, out: Output) -> int:
    _client(args).delete_registered_model_alias(args.name, args.alias)
    if out.as_json:
        out.json({"name": args.name, "alias": args.alias, "deleted": True})
    else:
        out.line(f"{args.name}@{args.alias} deleted")
    return EXIT_OK


def cmd_history(args: argparse.Namespace, out: Output) -> int:
    client = _client(args)
    events = client.get_model_history(args.name, args.version, include_deleted=args.all)
    if not events:
        _require_model(client, args.name, args.version)
    if out.as_json:
        out.json(events)
    else:
        # The model each event belongs to matters once a name has had more than one.
        models = len({v.model_id for v in events}) > 1
        out.table(
            ["TIME", *(["MODEL"] if models else []), "VERSION", "ACTION", "FROM", "TO", "ACTOR", "COMMENT"],
            [
                (
                    _time(v.time),
                    *([v.model_id] if models else []),
                    v.version or "-",
                    v.action,
                    v.from_value or "-",
                    v.to_value or "-",
                    v.actor,
                    v.comment,
                )
                for v in events
            ],
        )
    return EXIT_OK


def cmd_events_watch(args: argparse.Namespace, out: Output) -> int:
    """Prints events as they are written until interrupted (Ctrl-C ends it with status 0): one
    JSON object per line with --json (its ``cursor`` resumes after it), else one line each."""
    watch = _client(args).watch_model_events(
        args.name,
        actions=args.action or (),
        stages=args.stage or (),
        aliases=args.alias or (),
        cursor=args.cursor,
        from_beginning=args.from_beginning,
    )
    try:
        for event in watch:
            if out.as_json:
                print(json.dumps(_plain(event)), file=out.stdout, flush=True)
            else:
                version = f" v{event.version}" if event.version else ""
                values = (
                    f" {event.from_value or '-'} -> {event.to_value or '-'}"
                    if event.from_value or event.to_value
                    else ""
                )
                # A serving report's detail (why a version was refused) is in its comment.
                detail = f"  {event.comment}" if event.action.startswith("SERVING_") and event.comment else ""
                out.line(
                    f"{_time(event.time)}  {event.name}{version}  {event.action}{values}  by {event.actor}{detail}"
                )
                out.stdout.flush()
    except KeyboardInterrupt:  # Ctrl-C is how a watch ends
        watch.close()
    return EXIT_OK


def cmd_rollback(args: argparse.Namespace, out: Output) -> int:
    result = _client(args).rollback_stage(args.name, args.stage, args.comment)
    if out.as_json:
        out.json(result)
    else:
        archived = f"; version {result.archived.version} archived" if result.archived is not None else ""
        out.line(
            f"{args.name}: version {result.restored.version} holds {result.restored.current_stage} again{archived}"
        )
    return EXIT_OK


def cmd_download(args: argparse.Namespace, out: Output) -> int:
    from modelreg.models.fetch import fetch_model

    if args.uri.startswith((MODELS_SCHEME, RUNS_SCHEME)) or not Path(args.uri).is_dir():
        try:
            parse_model_uri(args.uri)
        except InvalidArgument as exc:
            raise UsageError(exc.reason, exc.message) from None
    client = _client(args)
    bar = ProgressBar(out.stderr, "download")
    try:
        fetched = fetch_model(
            args.uri,
            tracking=client.tracking,
            registry=client.registry,
            dst_path=args.output,
            progress=bar,
            overwrite=args.force,
        )
    except FileExistsError as exc:
        out.error(
            f"DESTINATION_EXISTS: {exc}: choose another --output, or pass --force to write the model's "
            "files into it (files of the same name are replaced, others are kept)"
        )
        return EXIT_FAILED
    finally:
        bar.finish()
    if out.as_json:
        # Every file written, modelreg-model.json included: exactly the files the source vouched for.
        files = fetched.metadata.files if fetched.source is None else fetched.source.digests
        out.json({"uri": args.uri, "path": str(fetched.path), "files": dict(sorted(files.items()))})
    else:
        out.line(f"{args.uri} -> {fetched.path}")
    return EXIT_OK


# Commands another distribution adds


def command_entry_points() -> dict[str, EntryPoint]:
    """The installed ``modelreg.commands`` entry points by command name."""
    return {point.name: point for point in entry_points(group=COMMANDS_GROUP)}


def _server_not_installed(args: argparse.Namespace, out: Output) -> int:
    words = ["modelreg", args.command]
    if SERVER_COMMANDS[args.command][1] and args.words and not args.words[0].startswith("-"):
        words.append(args.words[0])
    raise UsageError(
        "SERVER_NOT_INSTALLED",
        f"'{' '.join(words)}' needs the server distribution: pip install {SERVER_DISTRIBUTION}",
    )


# Parser

MODEL_HELP = "registered model name"
VERSION_HELP = "version number"
COMMENT_HELP = "recorded with the change in the model's history"


def positive_int(text: str) -> int:
    """An argparse type: a whole number of at least 1."""
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 1")
    return int(text)


def _common_options() -> argparse.ArgumentParser:
    # SUPPRESS defaults let the same option appear before or after the command without the
    # subcommand's default overwriting a value given before it.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--tracking-uri",
        default=argparse.SUPPRESS,
        help="tracking service host:port or grpcs://host:port (default: $MODELREG_TRACKING_URI, else localhost:50051)",
    )
    common.add_argument(
        "--registry-uri",
        default=argparse.SUPPRESS,
        help="registry service host:port or grpcs://host:port (default: $MODELREG_REGISTRY_URI, else localhost:50052)",
    )
    common.add_argument(
        "--json", action="store_true", default=argparse.SUPPRESS, help="machine-readable output"
    )
    common.add_argument(
        "--verbose", action="store_true", default=argparse.SUPPRESS, help="tracebacks on errors"
    )
    return common


@dataclass(frozen=True)
class CommandTree:
    """The ``modelreg`` subcommands, as a ``modelreg.commands`` entry point receives them to add its own."""

    commands: Any  # argparse's subparsers action, whose type argparse keeps private
    common: argparse.ArgumentParser  # --tracking-uri, --registry-uri, --json, --verbose

    def leaf(self, group: Any, name: str, handler: Handler, help_text: str) -> argparse.ArgumentParser:
        """A command that runs ``handler``, under ``group`` (``self.commands`` for a top-level one)."""
        sub: argparse.ArgumentParser = group.add_parser(
            name, parents=[self.common], help=help_text, description=help_text
        )
        sub.set_defaults(handler=handler)
        return sub

    def group(self, name: str, help_text: str) -> Any:
        """A top-level command whose actions are added with ``leaf(group, ...)``."""
        sub = self.commands.add_parser(name, help=help_text, description=help_text)
        return sub.add_subparsers(dest=f"{name}_command", required=True, metavar="ACTION")


def _add_plugin_commands(tree: CommandTree) -> None:
    """The commands of the ``modelreg.commands`` entry points; for a server command that has none,
    a stand-in that says what to install."""
    installed = command_entry_points()
    for name in [*SERVER_COMMANDS, *sorted(set(installed) - set(SERVER_COMMANDS))]:
        if name in installed:
            installed[name].load()(tree)
            continue
        hint = f"{SERVER_COMMANDS[name][0]} (needs {SERVER_DISTRIBUTION}: pip install {SERVER_DISTRIBUTION})"
        stand_in = tree.commands.add_parser(name, help=hint, description=hint)
        stand_in.add_argument("words", nargs="*", help=argparse.SUPPRESS)
        stand_in.set_defaults(handler=_server_not_installed, accepts_anything=True)


def build_parser() -> argparse.ArgumentParser:
    common = _common_options()
    parser = argparse.ArgumentParser(
        prog="modelreg", description="modelreg: experiment tracking and model registry", parents=[common]
    )
    tree = CommandTree(parser.add_subparsers(dest="command", required=True, metavar="COMMAND"), common)
    leaf, group = tree.leaf, tree.group
    commands = tree.commands
    _add_plugin_commands(tree)

    experiments = group("experiments", "experiments")
    exp_list = leaf(experiments, "list", cmd_experiments_list, "list experiments")
    exp_list.add_argument("--filter", default=None, help="e.g. \"name LIKE 'house%%'\"")
    exp_list.add_argument("--all", action="store_true", help="include deleted experiments")
    leaf(experiments, "show", cmd_experiments_show, "show one experiment").add_argument(
        "experiment", help="id or name"
    )

    runs = group("runs", "runs")
    runs_list = leaf(runs, "list", cmd_runs_list, "list runs, newest first")
    runs_list.add_argument("--experiment-id", action="append", help="repeatable; default: every experiment")
    runs_list.add_argument("--filter", default=None, help='e.g. "metrics.rmse < 5"')
    runs_list.add_argument(
        "--max-results", type=positive_int, default=100, help="at most this many runs (default %(default)s)"
    )
    leaf(runs, "show", cmd_runs_show, "show one run").add_argument("run_id", help="the run's id")

    models = group("models", "registered models")
    leaf(models, "list", cmd_models_list, "list registered models").add_argument(
        "--filter", default=None, help="e.g. \"name LIKE 'house%%'\""
    )
    leaf(models, "show", cmd_models_show, "show a registered model").add_argument("name", help=MODEL_HELP)

    versions = group("versions", "model versions")
    versions_list = leaf(versions, "list", cmd_versions_list, "list versions, newest first")
    versions_list.add_argument("name", nargs="?", help="registered model (default: every model)")
    versions_list.add_argument("--filter", default=None, help="e.g. \"current_stage='Production'\"")
    versions_show = leaf(versions, "show", cmd_versions_show, "show a version with its lineage")
    versions_show.add_argument("name", help=MODEL_HELP)
    versions_show.add_argument("version", help=VERSION_HELP)
    seal = leaf(
        versions,
        "seal",
        cmd_versions_seal,
        "seal the files of every version you can see against overwrites (once, as an admin, after upgrading)",
    )
    seal.add_argument("--model", default=None, help="only this registered model's versions")
    transition = leaf(versions, "transition", cmd_versions_transition, "move a version to a stage")
    transition.add_argument("name", help=MODEL_HELP)
    transition.add_argument("version", help=VERSION_HELP)
    transition.add_argument("stage", help="None, Staging, Production or Archived")
    transition.add_argument(
        "--no-archive", action="store_true", help="keep the stage's other versions where they are"
    )
    transition.add_argument("--comment", default="", help=COMMENT_HELP)

    alias = group("alias", "aliases")
    alias_set = leaf(alias, "set", cmd_alias_set, "point an alias at a version")
    alias_set.add_argument("name", help=MODEL_HELP)
    alias_set.add_argument("alias", help="letters, digits, '_' and '-', e.g. champion")
    alias_set.add_argument("version", help=VERSION_HELP)
    alias_delete = leaf(alias, "delete", cmd_alias_delete, "remove an alias")
    alias_delete.add_argument("name", help=MODEL_HELP)
    alias_delete.add_argument("alias", help="the alias to remove")

    history = leaf(commands, "history", cmd_history, "a model's audit history, oldest first")
    history.add_argument("name", help=MODEL_HELP)
    history.add_argument("--version", default=None, help="only this version's events")
    history.add_argument(
        "--all",
        action="store_true",
        help="also the events of earlier models of this name, deleted before the current one "
        "(an admin's when access control is on); a MODEL column then tells them apart",
    )

    events = group("events", "the registry's history as it is written")
    watch = leaf(events, "watch", cmd_events_watch, "print events as they are written, until interrupted")
    watch.add_argument("name", nargs="?", default=None, help="registered model (default: every model)")
    watch.add_argument(
        "--action", action="append", help="only this action, e.g. STAGE_TRANSITIONED; repeatable"
    )
    watch.add_argument("--stage", action="append", help="only events into or out of this stage; repeatable")
    watch.add_argument("--alias", action="append", help="only events of this alias; repeatable")
    start = watch.add_mutually_exclusive_group()
    start.add_argument("--cursor", default=None, help="resume after this cursor (an event's, with --json)")
    start.add_argument("--from-beginning", action="store_true", help="every event since the first")

    rollback = leaf(commands, "rollback", cmd_rollback, "give a stage back to its previous holder")
    rollback.add_argument("name", help=MODEL_HELP)
    rollback.add_argument("stage", help="Staging or Production")
    rollback.add_argument("--comment", default="", help=COMMENT_HELP)

    download = leaf(commands, "download", cmd_download, "download a model, verified, into a directory")
    download.add_argument("uri", help="models:/Name/Production, models:/Name@alias, runs:/<id>/path, ...")
    download.add_argument("-o", "--output", type=Path, required=True, help="directory to create (or empty)")
    download.add_argument(
        "--force",
        action="store_true",
        help="write into a directory that holds files: the model's replace those of the same name, others stay",
    )

    # Imported here: cli_access builds on this module's Output and CommandTree.
    from modelreg.cli_access import add_access_commands
    from modelreg.cli_gates import add_gate_commands
    from modelreg.cli_serve import add_serve_command
    from modelreg.cli_webhooks import add_webhook_commands

    add_access_commands(tree, models)
    add_gate_commands(tree)
    add_webhook_commands(tree)
    add_serve_command(tree)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Runs one command; returns the exit code (the console script exits with it)."""
    try:
        code = _run(argv)
        sys.stdout.flush()  # here, so a closed pipe is seen now rather than at interpreter exit
    except BrokenPipeError:
        return _closed_pipe()
    return code


def _run(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    try:
        # parse_args, except that a stand-in for a server command takes any arguments.
        args, unknown = parser.parse_known_args(argv)
        if unknown and not getattr(args, "accepts_anything", False):
            parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    except SystemExit as exc:  # argparse has printed the usage; --help exits 0
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    out = Output(sys.stdout, sys.stderr, getattr(args, "json", False))
    handler: Handler = args.handler
    try:
        return handler(args, out)
    except UsageError as exc:
        return _fail(args, out, EXIT_USAGE, str(exc))
    except (Unavailable, DeadlineExceeded) as exc:
        return _fail(args, out, EXIT_UNAVAILABLE, str(exc))
    except Unauthenticated as exc:
        return _fail(
            args, out, EXIT_FAILED, f"{exc} (set MODELREG_TOKEN to an API token or an OIDC access token)"
        )
    except PermissionDenied as exc:
        return _fail(args, out, EXIT_FAILED, _denied(exc))
    except ModelregError as exc:
        return _fail(args, out, EXIT_FAILED, str(exc))
    except BrokenPipeError:
        raise  # the reader of stdout has gone: main ends quietly
    except OSError as exc:  # local files: a full disk, a directory in the way, no permission...
        where = f"{exc.filename}: " if exc.filename else ""
        return _fail(args, out, EXIT_FAILED, f"LOCAL_FILE_ERROR: {where}{exc.strerror or exc}")
    except ValueError as exc:  # the client's settings: an unreadable MODELREG_CA_FILE, a bad timeout...
        return _fail(args, out, EXIT_USAGE, f"INVALID_SETTING: {exc}")


def _closed_pipe() -> int:
    """Ends quietly once stdout's reader has gone (``modelreg ... | head -1``). What is still
    buffered can never be written; stdout is pointed at /dev/null so the interpreter's final flush
    does not report it."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # stdout is no file descriptor (captured in-process)
        pass
    return EXIT_CLOSED_PIPE


def _denied(exc: PermissionDenied) -> str:
    """The refusal, naming the permission it needed when the message does not already."""
    needed = exc.metadata.get("permission", "")
    if not needed or needed in exc.message:
        return str(exc)
    on = exc.metadata.get("resource")
    return f"{exc} (needs {needed} on {on})" if on else f"{exc} (needs {needed})"


def _fail(args: argparse.Namespace, out: Output, code: int, error: str) -> int:
    """Reports the exception being handled as one line; the traceback only with --verbose."""
    if getattr(args, "verbose", False):
        # Escaped line by line: the messages in it may quote what a server sent.
        for line in traceback.format_exc().splitlines():
            print(printable(line), file=out.stderr)
    out.error(error)
    return code


if __name__ == "__main__":
    # Through the imported module rather than this __main__ copy of it, whose UsageError is not
    # the class the server's commands raise.
    from modelreg.cli import main as imported_main

    sys.exit(imported_main())
