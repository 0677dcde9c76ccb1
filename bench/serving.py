"""``modelreg serve`` against ``mlflow models serve``: `python bench/serving.py [--quick]` (`make bench-serving`).

One model, fitted once on the walkthrough's data (bench/common.py): a LinearRegression, logged and
registered through modelreg's client on modelreg's services (SQLite, local artifacts), and the very
same fitted model saved in MLflow's format by MLflow (the benchmark's MLflow venv, which
bench/run.py builds). Then, one server at a time on loopback, one worker each:

1. ``modelreg serve models:/ServingBench/1``;
2. ``mlflow models serve -m <dir> --env-manager local`` (MLflow 3's uvicorn server).

Against each, over keep-alive connections from this process (``http.client``): the latency (p50,
p99) of POST /invocations one request at a time with a 1-row and a 100-row ``dataframe_split``
body, then the requests per second of ``CLIENTS`` concurrent clients sending the 1-row body. Every
phase is bounded by a count and by ``PHASE_SECONDS``. Both servers' answers to the same body are
compared once. Prints a markdown table and writes it, with the numbers, to
bench/results/serving.md and serving.json.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import common
from run import (
    MLFLOW_PY,
    MLFLOW_VENV,
    RESULTS,
    ensure_mlflow_venv,
    free_port,
    http_ok,
    services,
    spawn,
    start_modelreg,
    wait_until,
)

MODEL_NAME = "ServingBench"
SEQUENTIAL = 2_000
CONCURRENT_PER_CLIENT = 1_000
CLIENTS = 4
# No phase runs longer than this, whatever its count.
PHASE_SECONDS = 60.0
QUICK_DIVISOR = 10

# Run under the MLflow venv: fit the same model on the same data, save it in MLflow's format.
MLFLOW_SAVE = """
import sys
sys.path.insert(0, {bench!r})
import warnings
warnings.filterwarnings("ignore")
import common, mlflow.sklearn
from sklearn.linear_model import LinearRegression
frame, target = common.walkthrough_frame()
mlflow.sklearn.save_model(LinearRegression().fit(frame, target), {path!r}, input_example=frame.head(3))
"""


def body(rows: int) -> bytes:
    frame, _ = common.walkthrough_frame(seed=1)
    split = frame.head(rows).to_dict(orient="split")
    return json.dumps({"dataframe_split": {"columns": split["columns"], "data": split["data"]}}).encode()


class Connection:
    """One keep-alive HTTP/1.1 connection posting to /invocations."""

    def __init__(self, port: int) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def post(self, payload: bytes) -> bytes:
        self.conn.request("POST", "/invocations", payload, {"Content-Type": "application/json"})
        response = self.conn.getresponse()
        data = response.read()
        if response.status != 200:
            raise RuntimeError(f"/invocations answered {response.status}: {data[:300]!r}")
        return data

    def close(self) -> None:
        self.conn.close()


def bounded(fn: Callable[[], object], n: int) -> list[int]:
    """Durations (ns) of up to ``n`` calls of ``fn``, stopping after PHASE_SECONDS."""
    samples: list[int] = []
    deadline = time.monotonic() + PHASE_SECONDS
    for _ in range(n):
        start = time.perf_counter_ns()
        fn()
        samples.append(time.perf_counter_ns() - start)
        if time.monotonic() > deadline:
            break
    return samples


def measure(port: int, quick: bool) -> dict[str, Any]:
    scale = QUICK_DIVISOR if quick else 1
    one, hundred = body(1), body(100)
    conn = Connection(port)
    try:
        answer = json.loads(conn.post(hundred))["predictions"]
        for _ in range(50):  # warm-up
            conn.post(one)
        results: dict[str, Any] = {"predictions": answer}
        for label, payload in (("1 row", one), ("100 rows", hundred)):
            samples = bounded(lambda payload=payload: conn.post(payload), SEQUENTIAL // scale)
            results[label] = {
                "n": len(samples),
                "p50_ms": common.percentile(samples, 50),
                "p99_ms": common.percentile(samples, 99),
            }
    finally:
        conn.close()
    results["concurrent"] = concurrent(port, CONCURRENT_PER_CLIENT // scale, one)
    return results


def concurrent(port: int, per_client: int, payload: bytes) -> dict[str, Any]:
    counts = [0] * CLIENTS
    errors: list[BaseException] = []
    barrier = threading.Barrier(CLIENTS + 1)

    def client(index: int) -> None:
        conn = Connection(port)
        try:
            barrier.wait()
            deadline = time.monotonic() + PHASE_SECONDS
            for _ in range(per_client):
                conn.post(payload)
                counts[index] += 1
                if time.monotonic() > deadline:
                    break
        except BaseException as exc:
            errors.append(exc)
        finally:
            conn.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise RuntimeError(f"a client failed: {errors[0]!r}")
    return {"clients": CLIENTS, "requests": sum(counts), "requests_per_s": sum(counts) / elapsed}


def bench_modelreg(home: Path, quick: bool) -> dict[str, Any]:
    from sklearn.linear_model import LinearRegression

    import modelreg
    import modelreg.sklearn

    port = free_port()
    with services() as started:
        stack = start_modelreg(started, home)
        env = {"MODELREG_TRACKING_URI": stack.tracking_target, "MODELREG_REGISTRY_URI": stack.registry_target}
        modelreg.set_tracking_uri(stack.tracking_target)
        modelreg.set_registry_uri(stack.registry_target)
        frame, target = common.walkthrough_frame()
        with modelreg.start_run():
            modelreg.sklearn.log_model(
                sk_model=LinearRegression().fit(frame, target),
                artifact_path="model",
                registered_model_name=MODEL_NAME,
                input_example=frame.head(3),
            )
        modelreg_bin = Path(sys.executable).parent / "modelreg"
        argv = [str(modelreg_bin), "serve", f"models:/{MODEL_NAME}/1", "--port", str(port)]
        server = spawn(
            started, "modelreg-serve", argv, home, {**env, "MODELREG_CACHE_DIR": str(home / "cache")}
        )
        wait_until(server, lambda: http_ok(f"http://127.0.0.1:{port}/ping"))
        result = measure(port, quick)
        result["peak_rss_mib"] = server.peak_rss_mib()
        return result


def bench_mlflow(home: Path, quick: bool) -> dict[str, Any]:
    ensure_mlflow_venv()
    model_dir = home / "mlflow-model"
    script = MLFLOW_SAVE.format(bench=str(Path(__file__).resolve().parent), path=str(model_dir))
    subprocess.run([str(MLFLOW_PY), "-c", script], check=True, timeout=300)
    port = free_port()
    argv = [
        str(MLFLOW_VENV / "bin" / "mlflow"),
        "models",
        "serve",
        "-m",
        str(model_dir),
        "--env-manager",
        "local",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    env = {"PATH": f"{MLFLOW_VENV / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"}
    with services() as started:
        server = spawn(started, "mlflow-models-serve", argv, home, env)
        wait_until(server, lambda: http_ok(f"http://127.0.0.1:{port}/ping"))
        result = measure(port, quick)
        result["peak_rss_mib"] = server.peak_rss_mib()
        return result


def render(results: dict[str, dict[str, Any]]) -> str:
    lines = [
        "| server | 1 row p50 ms | 1 row p99 ms | 100 rows p50 ms | 100 rows p99 ms | "
        f"requests/s ({CLIENTS} clients) | peak RSS MiB |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, r in results.items():
        lines.append(
            f"| {name} | {r['1 row']['p50_ms']:.2f} | {r['1 row']['p99_ms']:.2f} | "
            f"{r['100 rows']['p50_ms']:.2f} | {r['100 rows']['p99_ms']:.2f} | "
            f"{r['concurrent']['requests_per_s']:.0f} | {r['peak_rss_mib']:.0f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"a tenth of the requests (/{QUICK_DIVISOR})")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-serving-") as tmp:
        homes = {name: Path(tmp) / name for name in ("modelreg", "mlflow")}
        for home in homes.values():
            home.mkdir()
        # One after the other: never two servers competing for the machine's cores.
        results = {
            "modelreg serve": bench_modelreg(homes["modelreg"], args.quick),
            "mlflow models serve": bench_mlflow(homes["mlflow"], args.quick),
        }
    answers = [r.pop("predictions") for r in results.values()]
    same = all(abs(a - b) < 1e-6 for a, b in zip(answers[0], answers[1], strict=True))
    table = render(results)
    note = f"Same predictions from both servers: {'yes' if same else 'NO'}."
    print(table, note, sep="\n\n")
    RESULTS.mkdir(exist_ok=True)
    meta = {"when": datetime.now(UTC).isoformat(), "machine": platform.platform(), "quick": args.quick}
    (RESULTS / "serving.json").write_text(
        json.dumps({**meta, "same_predictions": same, "results": results}, indent=2)
    )
    (RESULTS / "serving.md").write_text(f"# modelreg serve vs mlflow models serve\n\n{table}\n\n{note}\n")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
