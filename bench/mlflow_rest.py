"""The unmodified mlflow client against MLflow's server and against modelreg's MLflow endpoint, side
by side in one run: `python bench/mlflow_rest.py [--quick] [--ops a,b]` (`make bench-mlflow-rest`).

1. MLflow's tracking server (SQLite, proxied local artifacts, loopback; the MLflow venv that
   bench/run.py builds) driven by bench/mlflow_rest_side.py through the ``mlflow`` client.
2. modelreg's two services (SQLite, local artifacts) and the endpoint (``python -m
   mlflow_gateway``) in front of them, driven by the very same script and client.
3. The operations that are one request, sent to each server by a bare HTTP client
   (bench/mlflow_rest_http_side.py: MLflow's paths and bodies over one keep-alive connection,
   without the ``mlflow`` client's own work per call): the servers compared alone. The same
   operations through modelreg's gRPC client against the same services
   (bench/mlflow_rest_grpc_side.py): the difference of its p50 and the endpoint's bare HTTP p50
   is what the endpoint adds.

The systems run one after the other, never at once. Prints a markdown table and writes it, with
the measurements, to bench/results/mlflow_rest.md and mlflow_rest.json. Targets (issue 14): each
operation at least 5x MLflow's, and the endpoint adding under 1 ms p50 over the gRPC client.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import common
import rest_ops
from rest_ops import REST_OPS, RestOp
from run import (
    BENCH,
    MLFLOW_PY,
    RESULTS,
    ensure_mlflow_venv,
    free_port,
    http_ok,
    mlflow_server_argv,
    run_side,
    services,
    spawn,
    start_modelreg,
    wait_until,
)

MIN_RATIO = 5.0
MAX_ADDED_MS = 1.0


def side_flags(args: argparse.Namespace, workdir: Path, blob: Path) -> list[str]:
    workdir.mkdir(parents=True, exist_ok=True)
    flags = ["--workdir", str(workdir), "--blob", str(blob), "--ops", args.ops]
    return [*flags, "--quick"] if args.quick else flags


def rest_side(url: str) -> list[str]:
    return [str(MLFLOW_PY), str(BENCH / "mlflow_rest_side.py"), "--tracking-uri", url]


def bare_http_side(url: str) -> list[str]:
    return [sys.executable, str(BENCH / "mlflow_rest_http_side.py"), "--tracking-uri", url]


def bench_mlflow(args: argparse.Namespace, tmp: Path, blob: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    home = tmp / "mlflow"
    home.mkdir()
    port = free_port()
    with services() as started:
        server = spawn(started, "mlflow-server", mlflow_server_argv(home, port), home)
        # MLflow's server imports much and starts workers: minutes on a loaded machine.
        wait_until(server, lambda: http_ok(f"http://127.0.0.1:{port}/health"), timeout=600)
        url = f"http://127.0.0.1:{port}"
        print("== mlflow client -> MLflow server", flush=True)
        through_client = run_side([*rest_side(url), *side_flags(args, home / "client", blob)], 1800)
        print("== bare HTTP client -> MLflow server", flush=True)
        bare_http = run_side([*bare_http_side(url), *side_flags(args, home / "http-client", blob)], 1800)
        return through_client, bare_http


def bench_modelreg(
    args: argparse.Namespace, tmp: Path, blob: Path
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    home = tmp / "modelreg"
    home.mkdir()
    port = free_port()
    with services() as started:
        targets = start_modelreg(started, home)
        endpoint_argv = [sys.executable, "-m", "mlflow_gateway", "--port", str(port)]
        endpoint_argv += [
            "--tracking-uri",
            targets.tracking_target,
            "--registry-uri",
            targets.registry_target,
        ]
        endpoint = spawn(started, "mlflow-endpoint", endpoint_argv, home)
        url = f"http://127.0.0.1:{port}"
        wait_until(endpoint, lambda: http_ok(f"{url}/health"))
        print("== mlflow client -> modelreg's MLflow endpoint", flush=True)
        through_endpoint = run_side([*rest_side(url), *side_flags(args, home / "rest-client", blob)], 1800)
        print("== bare HTTP client -> modelreg's MLflow endpoint", flush=True)
        bare_http = run_side([*bare_http_side(url), *side_flags(args, home / "http-client", blob)], 1800)
        print("== modelreg gRPC client -> the same services", flush=True)
        grpc_argv = [sys.executable, str(BENCH / "mlflow_rest_grpc_side.py")]
        grpc_argv += ["--tracking-uri", targets.tracking_target, "--registry-uri", targets.registry_target]
        through_grpc = run_side([*grpc_argv, *side_flags(args, home / "grpc-client", blob)], 1800)
        return through_endpoint, bare_http, through_grpc


def by_op(side: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["op"]: r for r in side["results"]}


def figure(result: dict[str, Any] | None, spec: RestOp) -> float | None:
    """The p50 in ms (latency) or the rate in MiB/s (throughput); None when it did not run."""
    if not result or result.get("error"):
        return None
    value = result.get("value") if spec.kind == "throughput" else result.get("p50_ms")
    return float(value) if value is not None else None


def cell(result: dict[str, Any] | None, spec: RestOp) -> str:
    if result and result.get("error"):
        return "error: " + result["error"].split("\n")[0][:100].replace("|", "/")
    value = figure(result, spec)
    if value is None:
        return "-"
    return f"{value:,.0f} MiB/s" if spec.kind == "throughput" else f"{value:.2f} ms"


def row(spec: RestOp, sides: dict[str, dict[str, Any] | None]) -> dict[str, Any]:
    """``sides``: this operation's result through each of SIDES (None: not run)."""
    mlflow, mlflow_bare, endpoint, bare, grpc = (sides[name] for name in SIDES)
    theirs, ours, direct = figure(mlflow, spec), figure(endpoint, spec), figure(grpc, spec)
    bare_ms, mlflow_bare_ms = figure(bare, spec), figure(mlflow_bare, spec)
    ratio = None
    if theirs and ours:
        ratio = ours / theirs if spec.kind == "throughput" else theirs / ours
    # The servers alone: the same requests from a bare HTTP client, without the mlflow client's
    # own work per call (parsing a thousand runs costs it the same against either server).
    server_ratio = mlflow_bare_ms / bare_ms if mlflow_bare_ms and bare_ms else None
    added = bare_ms - direct if spec.single_request and bare_ms is not None and direct is not None else None
    failures = []
    if ratio is None or ratio < MIN_RATIO:
        failures.append(f"<{MIN_RATIO:g}x")
    if spec.single_request and (added is None or added >= MAX_ADDED_MS):
        failures.append(f"added>={MAX_ADDED_MS:g}ms")
    return {
        "op": spec.name,
        "n": (endpoint or mlflow or {}).get("n", spec.n),
        "kind": spec.kind,
        **sides,
        "ratio": ratio,
        "server_ratio": server_ratio,
        "added_ms": added,
        "failures": failures,
        "cells": [
            spec.name,
            str((endpoint or mlflow or {}).get("n", spec.n)),
            cell(mlflow, spec),
            cell(endpoint, spec),
            f"{ratio:.1f}x" if ratio is not None else "-",
            cell(mlflow_bare, spec) if spec.single_request else "-",
            cell(bare, spec) if spec.single_request else "-",
            f"{server_ratio:.1f}x" if server_ratio is not None else "-",
            cell(grpc, spec),
            f"{added:+.2f} ms" if added is not None else "-",
            "pass" if not failures else "FAIL " + ", ".join(failures),
        ],
    }


# The measurements of each operation: the mlflow client against MLflow's server and against the
# endpoint, a bare HTTP client against each, modelreg's gRPC client against the services.
SIDES = ("mlflow", "mlflow_bare_http", "endpoint", "bare_http", "grpc")
HEADER = (
    "operation",
    "n",
    "MLflow server",
    "modelreg endpoint",
    "speed-up",
    "MLflow server, bare HTTP client",
    "endpoint, bare HTTP client",
    "server speed-up (bare HTTP)",
    "modelreg gRPC client",
    "endpoint adds",
    f"target: >={MIN_RATIO:g}x, adds <{MAX_ADDED_MS:g} ms",
)


def markdown(rows: list[dict[str, Any]]) -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(r["cells"]) + " |" for r in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help=f"1/{common.QUICK_DIVISOR} of each n")
    parser.add_argument("--ops", default=",".join(op.name for op in REST_OPS), help="comma-separated subset")
    args = parser.parse_args(argv)
    unknown = set(args.ops.split(",")) - set(rest_ops.REST_OPS_BY_NAME)
    if unknown:
        parser.error(f"unknown operations: {', '.join(sorted(unknown))}")
    ensure_mlflow_venv()
    RESULTS.mkdir(exist_ok=True)
    started = time.monotonic()
    tmp = Path(tempfile.mkdtemp(prefix="modelreg-bench-rest-"))
    try:
        blob = tmp / "blob.bin"
        with blob.open("wb") as blob_file:
            for _ in range(common.ARTIFACT_MIB):
                blob_file.write(os.urandom(1 << 20))
        mlflow_side, mlflow_http_side = bench_mlflow(args, tmp, blob)
        endpoint_side, http_side, grpc_side = bench_modelreg(args, tmp, blob)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    sides = (mlflow_side, mlflow_http_side, endpoint_side, http_side, grpc_side)
    measured = dict(zip(SIDES, map(by_op, sides), strict=True))
    specs = [spec for spec in REST_OPS if spec.name in args.ops.split(",")]
    rows = [row(spec, {side: measured[side].get(spec.name) for side in SIDES}) for spec in specs]
    table = markdown(rows)
    elapsed = time.monotonic() - started
    meta = {
        "time": datetime.now(UTC).isoformat(timespec="seconds"),
        "quick": args.quick,
        "elapsed_s": round(elapsed),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        "mlflow": mlflow_side["meta"],
        "modelreg": grpc_side["meta"],
    }
    note = (
        f"p50 per call (MiB/s for artifacts); mlflow {meta['mlflow']['version']} client in both MLflow "
        f"columns; {meta['machine']['cpus']} CPUs; {'quick run' if args.quick else 'full run'}, {elapsed:.0f}s. "
        "'endpoint adds': the endpoint's p50 through a bare HTTP client minus the gRPC client's p50, "
        "for operations that are one request and one call; the speed-up compares the mlflow client's "
        "calls to each server, the server speed-up the same requests from a bare HTTP client."
    )
    print()
    print(table)
    print()
    print(note)
    (RESULTS / "mlflow_rest.md").write_text(f"{table}\n\n{note}\n")
    (RESULTS / "mlflow_rest.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    print(f"wrote {RESULTS / 'mlflow_rest.md'} and {RESULTS / 'mlflow_rest.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
