"""modelreg against MLflow, side by side: `python bench/run.py [--quick] [--scale]`.

Starts an MLflow tracking server (SQLite, proxied local artifacts, loopback) from its own venv
(.venv-bench-mlflow, created on first use: MLflow pins protobuf and pandas versions the project
venv cannot hold), runs bench/mlflow_side.py against it, stops it; then starts modelreg's
tracking and registry services (SQLite, local artifacts) and a bytes-echo gRPC server for the
machine's floor, runs bench/modelreg_side.py against them, stops them. Each side drives its
system through that system's own Python client with the operations and data of bench/common.py.
Prints one table and writes bench/results/results.json and results.png (drawn by
bench/plot.py in the MLflow venv, which has matplotlib, so the project venv stays clean).

The systems run one after the other, never at once, so neither competes with the other's
server for the machine's two cores.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import common
from common import OpSpec

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH / "results"
MLFLOW_VENV = ROOT / ".venv-bench-mlflow"
MLFLOW_PY = MLFLOW_VENV / "bin" / "python"
# What the MLflow venv holds; a change here rebuilds it on the next run.
MLFLOW_REQUIREMENTS = ("mlflow>=3,<4", "scikit-learn", "pandas", "matplotlib")
# The last MLflow 2.x client, for the tests that run the real client against modelreg's REST endpoint.
MLFLOW2_VENV = ROOT / ".venv-mlflow2"
MLFLOW2_PY = MLFLOW2_VENV / "bin" / "python"
MLFLOW2_REQUIREMENTS = ("mlflow>=2,<3", "scikit-learn", "pandas")
FLOOR_CALLS = 2_000
FLOOR_PAYLOAD = b"x" * 32


def ensure_venv(venv: Path, requirements: Sequence[str]) -> Path:
    """Creates ``venv`` with ``requirements`` once; reuses it while they are unchanged. Its python."""
    python = venv / "bin" / "python"
    marker = venv / ".bench-requirements"
    wanted = "\n".join(requirements)
    if marker.exists() and marker.read_text() == wanted and python.exists():
        return python
    print(f"creating {venv.name} with {', '.join(requirements)} ...", flush=True)
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", "--clear", str(venv)], check=True)
    pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    subprocess.run([*pip, *requirements], check=True)
    marker.write_text(wanted)
    return python


def ensure_mlflow_venv() -> Path:
    """The benchmark's MLflow venv (the newest MLflow 3.x); its python."""
    return ensure_venv(MLFLOW_VENV, MLFLOW_REQUIREMENTS)


def ensure_mlflow2_venv() -> Path:
    """The last MLflow 2.x client's venv; its python."""
    return ensure_venv(MLFLOW2_VENV, MLFLOW2_REQUIREMENTS)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Service:
    """A server subprocess in its own process group, so stopping it stops its workers too."""

    name: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def peak_rss_mib(self) -> float:
        """Peak resident memory (VmHWM) summed over the process and its children."""
        total_kib = 0
        for pid in [self.process.pid, *descendants(self.process.pid)]:
            with suppress(OSError):
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        total_kib += int(line.split()[1])
        return total_kib / 1024

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        with suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=5)

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            raise RuntimeError(
                f"{self.name} exited ({self.process.returncode}); log:\n{self.log_path.read_text()[-3000:]}"
            )


def descendants(pid: int) -> list[int]:
    found: list[int] = []
    with suppress(OSError):
        for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
            found += [int(child), *descendants(int(child))]
    return found


@contextmanager
def services() -> Iterator[list[Service]]:
    """Collects started services and stops every one of them however the block ends."""
    started: list[Service] = []
    try:
        yield started
    finally:
        for service in reversed(started):
            service.stop()


def spawn(
    started: list[Service], name: str, argv: Sequence[str], logs: Path, env: dict[str, str] | None = None
) -> Service:
    log_path = logs / f"{name}.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            argv,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            cwd=logs,
            start_new_session=True,
        )
    service = Service(name, process, log_path)
    started.append(service)
    return service


def wait_until(service: Service, ready: Any, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        service.check_alive()
        with suppress(Exception):
            if ready():
                return
        time.sleep(0.2)
    raise TimeoutError(f"{service.name} did not become ready in {timeout:.0f}s; see {service.log_path}")


def http_ok(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=2) as response:
        return bool(response.status == 200)


def tcp_open(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=1):
        return True


def grpc_serving(target: str, ca_file: Path | None = None) -> bool:
    """The health service says SERVING; ``ca_file``: the port serves TLS with a certificate it signed."""
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    target = target.removeprefix("grpcs://")
    with (
        grpc.secure_channel(target, grpc.ssl_channel_credentials(ca_file.read_bytes()))
        if ca_file
        else grpc.insecure_channel(target)
    ) as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=2)
        return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


@dataclass(frozen=True)
class ModelregServices:
    tracking: Service
    registry: Service
    tracking_target: str
    registry_target: str


def start_modelreg(
    started: list[Service], home: Path, env: Mapping[str, str] | None = None, tls: Path | None = None
) -> ModelregServices:
    """Both services on free loopback ports with fresh SQLite databases and artifacts under
    ``home`` (they create their schema at start: MODELREG_AUTO_MIGRATE), once both are SERVING.
    ``env`` is added to both services' environment; ``tls`` is a directory of
    ``modelreg_server.tls.write_local_certificates`` files: both serve TLS with its server
    certificate, the registry reaches tracking over it, and the targets are ``grpcs://``."""
    tracking_port, registry_port = free_port(), free_port()
    scheme = "grpcs://" if tls else ""
    tracking_target = f"{scheme}127.0.0.1:{tracking_port}"
    registry_target = f"{scheme}127.0.0.1:{registry_port}"
    shared = dict(env or {})
    if tls:
        shared |= {
            "MODELREG_TLS_CERT_FILE": str(tls / "server.pem"),
            "MODELREG_TLS_KEY_FILE": str(tls / "server-key.pem"),
            "MODELREG_TRACKING_CA_FILE": str(tls / "ca.pem"),
        }
    tracking_env = {
        **shared,
        "MODELREG_TRACKING_HOST": "127.0.0.1",
        "MODELREG_TRACKING_PORT": str(tracking_port),
        "MODELREG_TRACKING_DATABASE_URL": f"sqlite:///{home / 'tracking.db'}",
        "MODELREG_ARTIFACT_ROOT": f"file://{home / 'artifacts'}",
    }
    registry_env = {
        **shared,
        "MODELREG_REGISTRY_HOST": "127.0.0.1",
        "MODELREG_REGISTRY_PORT": str(registry_port),
        "MODELREG_REGISTRY_DATABASE_URL": f"sqlite:///{home / 'registry.db'}",
        "MODELREG_TRACKING_TARGET": tracking_target,
    }
    py = sys.executable
    tracking = spawn(started, "tracking", [py, "-m", "tracking_service", "serve"], home, tracking_env)
    registry = spawn(started, "registry", [py, "-m", "registry_service", "serve"], home, registry_env)
    ca_file = tls / "ca.pem" if tls else None
    wait_until(tracking, lambda: grpc_serving(tracking_target, ca_file))
    wait_until(registry, lambda: grpc_serving(registry_target, ca_file))
    return ModelregServices(tracking, registry, tracking_target, registry_target)


def run_side(argv: Sequence[str], timeout: float) -> dict[str, Any]:
    """Runs one side; its stderr (progress) goes to the console, its stdout is the JSON result."""
    completed = subprocess.run(argv, stdout=subprocess.PIPE, timeout=timeout, check=False, cwd=BENCH)
    if completed.returncode != 0:
        raise RuntimeError(f"{Path(argv[1]).name} failed with exit code {completed.returncode}")
    parsed: dict[str, Any] = json.loads(completed.stdout.decode().strip().splitlines()[-1])
    return parsed


def side_flags(args: argparse.Namespace, workdir: Path, blob: Path, ops: str) -> list[str]:
    flags = ["--workdir", str(workdir), "--blob", str(blob), "--ops", ops]
    return [*flags, "--quick"] if args.quick else flags


def mlflow_server_argv(home: Path, port: int) -> list[str]:
    """An MLflow tracking server on 127.0.0.1:``port``: SQLite and proxied local artifacts under ``home``."""
    return [
        str(MLFLOW_VENV / "bin" / "mlflow"),
        "server",
        "--backend-store-uri",
        f"sqlite:///{home / 'mlflow.db'}",
        "--artifacts-destination",
        str(home / "artifacts"),
        "--serve-artifacts",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]


def bench_mlflow(args: argparse.Namespace, tmp: Path, blob: Path) -> tuple[dict[str, Any], dict[str, float]]:
    ensure_mlflow_venv()
    home = tmp / "mlflow"
    home.mkdir()
    port = free_port()
    with services() as started:
        server = spawn(started, "mlflow-server", mlflow_server_argv(home, port), home)
        started_at = time.monotonic()
        wait_until(server, lambda: http_ok(f"http://127.0.0.1:{port}/health"))
        print(f"MLflow server ready in {time.monotonic() - started_at:.1f}s", flush=True)
        argv = [str(MLFLOW_PY), str(BENCH / "mlflow_side.py"), "--tracking-uri", f"http://127.0.0.1:{port}"]
        workdir = home / "client"
        workdir.mkdir()
        result = run_side([*argv, *side_flags(args, workdir, blob, args.ops)], timeout=900)
        return result, {"mlflow-server": server.peak_rss_mib()}


def bench_modelreg(
    args: argparse.Namespace, tmp: Path, blob: Path, ops: str
) -> tuple[dict[str, Any], dict[str, float]]:
    home = tmp / "modelreg"
    home.mkdir()
    echo_port = free_port()
    py = sys.executable
    with services() as started:
        started_at = time.monotonic()
        echo = spawn(started, "echo-server", [py, str(BENCH / "echo_server.py"), str(echo_port)], home)
        modelreg_services = start_modelreg(started, home)
        wait_until(echo, lambda: tcp_open(echo_port))
        print(f"modelreg services ready in {time.monotonic() - started_at:.1f}s", flush=True)
        workdir = home / "client"
        workdir.mkdir()
        argv = [
            py,
            str(BENCH / "modelreg_side.py"),
            "--tracking-uri",
            modelreg_services.tracking_target,
            "--registry-uri",
            modelreg_services.registry_target,
            "--echo-target",
            f"127.0.0.1:{echo_port}",
            "--floor-calls",
            str(FLOOR_CALLS if not args.quick else FLOOR_CALLS // common.QUICK_DIVISOR),
        ]
        result = run_side([*argv, *side_flags(args, workdir, blob, ops)], timeout=1800)
        rss = {
            service.name: service.peak_rss_mib()
            for service in (modelreg_services.tracking, modelreg_services.registry)
        }
        return result, rss


# --- judging and printing ---------------------------------------------------------------------


def by_op(side: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    return {r["op"]: r for r in side["results"]} if side else {}


def judge(
    spec: OpSpec, mine: dict[str, Any] | None, theirs: dict[str, Any] | None, floor_ms: float | None
) -> dict[str, Any]:
    """One table row: the two measurements, the ratio and which of the issue's targets hold."""
    row: dict[str, Any] = {
        "op": spec.name,
        "n": spec.n,
        "kind": spec.kind,
        "modelreg": mine,
        "mlflow": theirs,
    }
    failures: list[str] = []
    ratio: float | None = None
    row["n"] = (mine or theirs or {}).get("n", spec.n)
    if mine and not mine.get("error"):
        m50, m99 = mine.get("p50_ms"), mine.get("p99_ms")
        if spec.kind == "throughput" and theirs and theirs.get("value") and mine.get("value"):
            ratio = mine["value"] / theirs["value"]
        elif theirs and theirs.get("p50_ms") and m50:
            ratio = theirs["p50_ms"] / m50
        if spec.min_ratio is not None and (ratio is None or ratio < spec.min_ratio):
            failures.append(f"ratio<{spec.min_ratio:g}x")
        if spec.max_ms is not None and (m50 is None or m50 > spec.max_ms):
            failures.append(f"p50>{spec.max_ms:g}ms")
        if spec.kind == "latency" and m50 and m99 and m99 >= 5 * m50:
            failures.append("p99>=5xp50")
        if spec.round_trips and floor_ms and m50 and m50 > 4 * floor_ms * spec.round_trips:
            failures.append(f"p50>4xfloorx{spec.round_trips}")
        if spec.kind == "concurrency":
            extra = mine.get("extra", {})
            if extra.get("errors") or extra.get("duplicates"):
                failures.append("errors/duplicates")
    else:
        failures.append("error" if mine else "not run")
    row["ratio"] = ratio
    row["target"] = target_text(spec)
    row["failures"] = failures
    row["pass"] = None if spec.kind == "info" and not failures else not failures
    return row


def target_text(spec: OpSpec) -> str:
    if spec.kind in ("latency", "throughput"):
        parts = [f">={spec.min_ratio:g}x"]
        if spec.round_trips:
            parts.append(f"<=4xfloorx{spec.round_trips}")
        return " ".join(parts)
    if spec.kind == "absolute":
        return f"p50<{spec.max_ms:g}ms"
    if spec.kind == "concurrency":
        return "0 err, 0 dup"
    return "-"


def cells(result: dict[str, Any] | None, spec: OpSpec) -> tuple[str, str]:
    """(p50 cell, p99 cell) of one system: latencies in ms, rates for throughput ops."""
    if not result:
        return "-", "-"
    if result.get("error"):
        return "ERROR", result["error"][:40]
    if spec.kind == "concurrency":
        extra = result.get("extra", {})
        return (
            f"{result['value']:.2f} s",
            f"{extra.get('errors', '?')} err {extra.get('duplicates', '?')} dup",
        )
    p99 = f"{result['p99_ms']:.2f}" if result.get("p99_ms") is not None else "-"
    if spec.kind == "throughput":
        return f"{result['value']:,.0f} {spec.unit}", f"{p99} ms/call"
    return f"{result['p50_ms']:.2f}", p99


def render(rows: list[dict[str, Any]], floor: dict[str, Any] | None) -> str:
    header = (
        "operation",
        "n",
        "modelreg p50",
        "modelreg p99",
        "MLflow p50",
        "MLflow p99",
        "MLflow/modelreg",
        "target",
        "result",
    )
    table: list[tuple[str, ...]] = [header]
    for row in rows:
        spec = common.OPS_BY_NAME.get(row["op"]) or common.SCALE_OPS_BY_NAME[row["op"]]
        m50, m99 = cells(row["modelreg"], spec)
        f50, f99 = cells(row["mlflow"], spec)
        ratio = f"{row['ratio']:.1f}x" if row["ratio"] is not None else "-"
        verdict = (
            "-" if row["pass"] is None else "pass" if row["pass"] else "FAIL " + ",".join(row["failures"])
        )
        table.append((row["op"], str(row["n"]), m50, m99, f50, f99, ratio, row["target"], verdict))
    if floor:
        table.append(
            (
                "grpc echo (floor)",
                str(floor["n"]),
                f"{floor['p50_ms']:.2f}",
                f"{floor['p99_ms']:.2f}",
                "-",
                "-",
                "-",
                "-",
                "-",
            )
        )
    widths = [max(len(line[i]) for line in table) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in table
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--quick", action="store_true", help=f"1/{common.QUICK_DIVISOR} of each n (under 2 minutes)"
    )
    parser.add_argument(
        "--scale", action="store_true", help="also the modelreg-only scale checks (100k runs, 10k versions)"
    )
    parser.add_argument(
        "--ops", default=",".join(op.name for op in common.OPS), help="comma-separated subset"
    )
    parser.add_argument("--only", choices=("both", "mlflow", "modelreg"), default="both")
    args = parser.parse_args(argv)
    RESULTS.mkdir(exist_ok=True)
    started = time.monotonic()
    tmp = Path(tempfile.mkdtemp(prefix="modelreg-bench-"))
    try:
        blob = tmp / "blob.bin"
        with blob.open("wb") as blob_file:
            for _ in range(common.ARTIFACT_MIB):
                blob_file.write(os.urandom(1 << 20))
        mlflow_result: dict[str, Any] | None = None
        modelreg_result: dict[str, Any] | None = None
        rss: dict[str, float] = {}
        if args.only in ("both", "mlflow"):
            print("== MLflow", flush=True)
            mlflow_result, mlflow_rss = bench_mlflow(args, tmp, blob)
            rss.update(mlflow_rss)
        if args.only in ("both", "modelreg"):
            print("== modelreg", flush=True)
            ops = args.ops + ("," + ",".join(common.SCALE_OPS_BY_NAME) if args.scale else "")
            modelreg_result, modelreg_rss = bench_modelreg(args, tmp, blob, ops)
            rss.update(modelreg_rss)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    mine, theirs = by_op(modelreg_result), by_op(mlflow_result)
    floor = mine.pop("grpc_echo_floor", None)
    floor_ms = floor["p50_ms"] if floor else None
    specs = [op for op in common.OPS if op.name in args.ops.split(",")]
    specs += [op for op in common.SCALE_OPS if op.name in mine]
    rows = [judge(spec, mine.get(spec.name), theirs.get(spec.name), floor_ms) for spec in specs]
    table = render(rows, floor)
    elapsed = time.monotonic() - started
    print()
    print(table)
    print(
        f"\n{sum(r['pass'] is True for r in rows)} pass, {sum(r['pass'] is False for r in rows)} fail; {elapsed:.0f}s"
    )
    document = {
        "meta": {
            "time": datetime.now(UTC).isoformat(timespec="seconds"),
            "quick": args.quick,
            "elapsed_s": round(elapsed),
            "machine": {
                "cpus": os.cpu_count(),
                "platform": platform.platform(),
                "python": platform.python_version(),
            },
            "mlflow": mlflow_result["meta"] if mlflow_result else None,
            "modelreg": modelreg_result["meta"] if modelreg_result else None,
            "server_peak_rss_mib": {name: round(value, 1) for name, value in rss.items()},
        },
        "floor": floor,
        "rows": rows,
        "table": table,
    }
    out = RESULTS / "results.json"
    out.write_text(json.dumps(document, indent=2) + "\n")
    if MLFLOW_PY.exists():
        subprocess.run(
            [str(MLFLOW_PY), str(BENCH / "plot.py"), str(out), str(RESULTS / "results.png")], check=False
        )
    print(f"wrote {out} and {RESULTS / 'results.png'}")
    # A missed target is a measurement; only an operation that could not run fails the command.
    return 1 if any({"error", "not run"} & set(r["failures"]) for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
