"""``modelreg serve`` against ``mlflow models serve``, then hot swap: `python bench/serving.py [--quick] [--swap]`.

`make bench-serving` runs both sections; `--swap` (`make bench-serving-swap`) only the second.

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

Hot swap (modelreg only): two versions of the model, the second predicting VERSION_OFFSET more,
``modelreg serve models:/ServingSwapBench@champion`` on loopback, SWAP_CLIENTS clients posting the
1-row body without pause. After SWAP_BASELINE_SECONDS of steady load the alias moves SWAPS times
between the versions; for each move, the time from ``set_registered_model_alias`` returning to the
first 200 answer whose ``x-modelreg-model-version`` names the new version. Every answer is checked:
a non-200, a connection error or predictions not those of the version the header names count as
failed. The serving process's RSS is sampled every RSS_INTERVAL_SECONDS. Bounded by SWAPS,
SWAP_TIMEOUT_SECONDS per move and SWAP_PHASE_SECONDS in all. Written to
bench/results/serving-swap.md and serving-swap.json; exits 1 on any failed request or unseen swap.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from contextlib import suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import common
from run import (
    MLFLOW_PY,
    MLFLOW_VENV,
    RESULTS,
    Service,
    descendants,
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


def register_versions(started: list[Service], home: Path, name: str, models: list[Any]) -> dict[str, str]:
    """Starts tracking and registry under ``home``, logs each fitted model as the next version of
    ``name`` (with the walkthrough's input example) and returns the client environment."""
    import modelreg
    import modelreg.sklearn

    stack = start_modelreg(started, home)
    modelreg.set_tracking_uri(stack.tracking_target)
    modelreg.set_registry_uri(stack.registry_target)
    frame, _ = common.walkthrough_frame()
    for model in models:
        with modelreg.start_run():
            modelreg.sklearn.log_model(
                sk_model=model, artifact_path="model", registered_model_name=name, input_example=frame.head(3)
            )
    return {"MODELREG_TRACKING_URI": stack.tracking_target, "MODELREG_REGISTRY_URI": stack.registry_target}


def start_serve(started: list[Service], home: Path, env: dict[str, str], uri: str) -> tuple[Service, int]:
    """``modelreg serve uri`` on a free loopback port, once it answers /ping."""
    port = free_port()
    argv = [str(Path(sys.executable).parent / "modelreg"), "serve", uri, "--port", str(port)]
    server = spawn(started, "modelreg-serve", argv, home, {**env, "MODELREG_CACHE_DIR": str(home / "cache")})
    wait_until(server, lambda: http_ok(f"http://127.0.0.1:{port}/ping"))
    return server, port


def bench_modelreg(home: Path, quick: bool) -> dict[str, Any]:
    from sklearn.linear_model import LinearRegression

    with services() as started:
        env = register_versions(
            started, home, MODEL_NAME, [LinearRegression().fit(*common.walkthrough_frame())]
        )
        server, port = start_serve(started, home, env, f"models:/{MODEL_NAME}/1")
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


# --- hot swap ------------------------------------------------------------------------------------

SWAP_MODEL_NAME = "ServingSwapBench"
SWAP_ALIAS = "champion"
SWAP_CLIENTS = 4
SWAPS = 20
# The steady rate is measured over this long before the first alias move.
SWAP_BASELINE_SECONDS = 10.0
# One swap not seen by then counts as timed out; the whole swap phase stops after SWAP_PHASE_SECONDS.
SWAP_TIMEOUT_SECONDS = 30.0
SWAP_PHASE_SECONDS = 180.0
# Between a swap seen and the next move, so one swap never overlaps the next.
SWAP_SETTLE_SECONDS = 0.25
RSS_INTERVAL_SECONDS = 0.02
# Predictions of version 2 are those of version 1 plus this: a 200 is checked against its header.
VERSION_OFFSET = 1_000.0


def rss_bytes(pid: int) -> int:
    """Resident memory of the process and its children (psutil when installed, else /proc)."""
    try:
        import psutil
    except ImportError:
        total_kib = 0
        for one in [pid, *descendants(pid)]:
            with suppress(OSError):
                for line in Path(f"/proc/{one}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        total_kib += int(line.split()[1])
        return total_kib * 1024
    process = psutil.Process(pid)
    total = 0
    for one in [process, *process.children(recursive=True)]:
        with suppress(psutil.Error):
            total += one.memory_info().rss
    return total


class RssSampler(threading.Thread):
    """Samples the serving process's RSS every RSS_INTERVAL_SECONDS as (perf_counter, bytes)."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.samples: list[tuple[float, int]] = []
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(RSS_INTERVAL_SECONDS):
            self.samples.append((time.perf_counter(), rss_bytes(self.pid)))

    def between(self, start: float, end: float) -> list[int]:
        return [rss for at, rss in self.samples if start <= at <= end]


class SwapClients:
    """SWAP_CLIENTS threads posting the 1-row body without pause, each on its own keep-alive
    connection. Every answer is counted; a 200 counts as failed when its predictions are not
    those of the version its ``x-modelreg-model-version`` header names; anything else (non-200,
    connection error) counts as failed and the client reconnects. ``awaited``: the version whose
    first 200 answer the swap loop waits for, and when that answer arrived."""

    def __init__(self, port: int, payload: bytes, expected: dict[str, list[float]]) -> None:
        self.port, self.payload, self.expected = port, payload, expected
        self.lock = threading.Lock()
        self.answered = 0
        self.failed = 0
        self.failures: list[str] = []
        self.awaited: str | None = None
        self.seen_at: float | None = None
        self.seen = threading.Event()
        self.stopped = threading.Event()
        self.threads = [threading.Thread(target=self.client, daemon=True) for _ in range(SWAP_CLIENTS)]

    def await_version(self, version: str) -> None:
        with self.lock:
            self.awaited, self.seen_at = version, None
            self.seen.clear()

    def client(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        while not self.stopped.is_set():
            problem = None
            try:
                conn.request("POST", "/invocations", self.payload, {"Content-Type": "application/json"})
                response = conn.getresponse()
                data = response.read()
                arrived = time.perf_counter()
                version = response.getheader("x-modelreg-model-version") or ""
                if response.status != 200:
                    problem = f"{response.status} {data[:200]!r}"
                elif not close(json.loads(data)["predictions"], self.expected.get(version)):
                    problem = f"version {version!r} answered other predictions"
            except (OSError, http.client.HTTPException, ValueError, KeyError) as exc:
                problem = repr(exc)
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            with self.lock:
                self.answered += 1
                if problem is not None:
                    self.failed += 1
                    if len(self.failures) < 10:
                        self.failures.append(problem)
                elif version == self.awaited and self.seen_at is None:
                    self.seen_at = arrived
                    self.seen.set()
        conn.close()


def close(got: list[float], expected: list[float] | None) -> bool:
    return (
        expected is not None
        and len(got) == len(expected)
        and all(abs(a - b) < 1e-6 for a, b in zip(got, expected, strict=True))
    )


def bench_swap(home: Path, quick: bool) -> dict[str, Any]:
    """``modelreg serve models:/<name>@champion`` under SWAP_CLIENTS clients while the alias moves
    SWAPS times between versions 1 and 2: the time from the move's RPC returning to the first 200
    answer from the new version, failed requests, requests/s with and without swaps, and RSS."""
    from sklearn.linear_model import LinearRegression

    import modelreg

    swaps = SWAPS // QUICK_DIVISOR * 2 if quick else SWAPS
    baseline_seconds = SWAP_BASELINE_SECONDS / QUICK_DIVISOR * 3 if quick else SWAP_BASELINE_SECONDS
    frame, target = common.walkthrough_frame()
    request_frame = common.walkthrough_frame(seed=1)[0].head(1)
    models = [LinearRegression().fit(frame, target + offset) for offset in (0.0, VERSION_OFFSET)]
    # Versions are numbered from 1 in the order logged.
    expected = {str(n): [float(x) for x in m.predict(request_frame)] for n, m in enumerate(models, 1)}
    with services() as started:
        env = register_versions(started, home, SWAP_MODEL_NAME, models)
        client = modelreg.Client()
        client.set_registered_model_alias(SWAP_MODEL_NAME, SWAP_ALIAS, 1)
        server, port = start_serve(started, home, env, f"models:/{SWAP_MODEL_NAME}@{SWAP_ALIAS}")
        sampler = RssSampler(server.process.pid)
        clients = SwapClients(port, body(1), expected)
        sampler.start()
        for thread in clients.threads:
            thread.start()
        try:
            time.sleep(1.0)  # warm-up
            start_answered, start = clients.answered, time.perf_counter()
            time.sleep(baseline_seconds)
            baseline_answered, baseline_end = clients.answered, time.perf_counter()
            baseline = (baseline_answered - start_answered) / (baseline_end - start)
            failed_before = clients.failed
            latencies_ns: list[int] = []
            from_call_ns: list[int] = []
            timeouts = 0
            serving = "1"
            phase_deadline = time.monotonic() + SWAP_PHASE_SECONDS
            for _ in range(swaps):
                if time.monotonic() > phase_deadline:
                    break
                moved_to = "2" if serving == "1" else "1"
                clients.await_version(moved_to)
                called_at = time.perf_counter()
                client.set_registered_model_alias(SWAP_MODEL_NAME, SWAP_ALIAS, int(moved_to))
                moved_at = time.perf_counter()
                if clients.seen.wait(SWAP_TIMEOUT_SECONDS) and clients.seen_at is not None:
                    # Seen before the RPC returned (the swap beat the reply's way back): counted as 0.
                    latencies_ns.append(max(0, int((clients.seen_at - moved_at) * 1e9)))
                    from_call_ns.append(int((clients.seen_at - called_at) * 1e9))
                    serving = moved_to
                else:
                    timeouts += 1
                    server.check_alive()
                time.sleep(SWAP_SETTLE_SECONDS)
            swaps_answered, swaps_end = clients.answered, time.perf_counter()
            failed_during = clients.failed - failed_before
        finally:
            clients.stopped.set()
            for thread in clients.threads:
                thread.join(timeout=35)
            time.sleep(0.5)
            sampler.stopped.set()
            sampler.join()
    mib = 1024 * 1024
    baseline_rss = sampler.between(start, baseline_end)
    swap_rss = sampler.between(baseline_end, swaps_end)
    after_rss = [rss for at, rss in sampler.samples if at > swaps_end]
    return {
        "clients": SWAP_CLIENTS,
        "swaps": len(latencies_ns) + timeouts,
        "swaps_seen": len(latencies_ns),
        "swaps_timed_out": timeouts,
        "swap_p50_ms": common.percentile(latencies_ns, 50) if latencies_ns else None,
        "swap_p90_ms": common.percentile(latencies_ns, 90) if latencies_ns else None,
        "swap_max_ms": max(latencies_ns) / 1e6 if latencies_ns else None,
        "swap_ms": [ns / 1e6 for ns in latencies_ns],
        "swaps_seen_before_rpc_returned": sum(1 for ns in latencies_ns if ns == 0),
        "swap_from_call_p50_ms": common.percentile(from_call_ns, 50) if from_call_ns else None,
        "swap_from_call_max_ms": max(from_call_ns) / 1e6 if from_call_ns else None,
        "requests_during_swaps": swaps_answered - baseline_answered,
        "failed_during_swaps": failed_during,
        "failed_total": clients.failed,
        "failures": clients.failures,
        "requests_per_s_without_swaps": baseline,
        "requests_per_s_during_swaps": (swaps_answered - baseline_answered) / (swaps_end - baseline_end),
        "rss_samples": len(sampler.samples),
        "rss_baseline_mib": statistics.median(baseline_rss) / mib if baseline_rss else None,
        "rss_peak_during_swaps_mib": max(swap_rss) / mib if swap_rss else None,
        "rss_after_swaps_mib": after_rss[-1] / mib if after_rss else None,
    }


def render_swap(r: dict[str, Any]) -> str:
    def ms(value: float | None) -> str:
        return "-" if value is None else f"{value:.0f}"

    def mib(value: float | None) -> str:
        return "-" if value is None else f"{value:.1f}"

    return "\n".join(
        [
            "| measure | value |",
            "|---|---|",
            f"| alias moves (seen / timed out) | {r['swaps']} ({r['swaps_seen']} / {r['swaps_timed_out']}) |",
            f"| move returned -> first 200 from new version p50 ms | {ms(r['swap_p50_ms'])} |",
            f"| ... p90 ms | {ms(r['swap_p90_ms'])} |",
            f"| ... max ms | {ms(r['swap_max_ms'])} |",
            f"| ... seen before the move RPC returned (counted as 0) | {r['swaps_seen_before_rpc_returned']} |",
            f"| move RPC called -> first 200 from new version p50 / max ms | "
            f"{ms(r['swap_from_call_p50_ms'])} / {ms(r['swap_from_call_max_ms'])} |",
            f"| failed requests during swaps | {r['failed_during_swaps']} of {r['requests_during_swaps']} |",
            f"| requests/s without swaps ({r['clients']} clients) | {r['requests_per_s_without_swaps']:.0f} |",
            f"| requests/s during swaps ({r['clients']} clients) | {r['requests_per_s_during_swaps']:.0f} |",
            f"| RSS baseline MiB (median) | {mib(r['rss_baseline_mib'])} |",
            f"| RSS peak during swaps MiB | {mib(r['rss_peak_during_swaps_mib'])} |",
            f"| RSS after swaps MiB | {mib(r['rss_after_swaps_mib'])} |",
        ]
    )


def write_swap(results: dict[str, Any], quick: bool) -> int:
    table = render_swap(results)
    verdict = results["failed_total"] == 0 and results["swaps_timed_out"] == 0
    note = (
        f"RSS sampled every {RSS_INTERVAL_SECONDS * 1000:.0f} ms ({results['rss_samples']} samples). "
        f"Failed requests overall: {results['failed_total']}."
    )
    print(table, note, *results["failures"], sep="\n\n")
    RESULTS.mkdir(exist_ok=True)
    meta = {"when": datetime.now(UTC).isoformat(), "machine": platform.platform(), "quick": quick}
    (RESULTS / "serving-swap.json").write_text(json.dumps({**meta, "results": results}, indent=2))
    (RESULTS / "serving-swap.md").write_text(f"# modelreg serve: hot swap under load\n\n{table}\n\n{note}\n")
    return 0 if verdict else 1


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
    parser.add_argument(
        "--swap", action="store_true", help="only the hot-swap section (modelreg serve following an alias)"
    )
    args = parser.parse_args(argv)
    if args.swap:
        return swap(args.quick)
    status = compare(args.quick)
    return swap(args.quick) or status


def swap(quick: bool) -> int:
    with tempfile.TemporaryDirectory(prefix="bench-serving-swap-") as tmp:
        results = bench_swap(Path(tmp), quick)
    return write_swap(results, quick)


def compare(quick: bool) -> int:
    with tempfile.TemporaryDirectory(prefix="bench-serving-") as tmp:
        homes = {name: Path(tmp) / name for name in ("modelreg", "mlflow")}
        for home in homes.values():
            home.mkdir()
        # One after the other: never two servers competing for the machine's cores.
        results = {
            "modelreg serve": bench_modelreg(homes["modelreg"], quick),
            "mlflow models serve": bench_mlflow(homes["mlflow"], quick),
        }
    answers = [r.pop("predictions") for r in results.values()]
    same = all(abs(a - b) < 1e-6 for a, b in zip(answers[0], answers[1], strict=True))
    table = render(results)
    note = f"Same predictions from both servers: {'yes' if same else 'NO'}."
    print(table, note, sep="\n\n")
    RESULTS.mkdir(exist_ok=True)
    meta = {"when": datetime.now(UTC).isoformat(), "machine": platform.platform(), "quick": quick}
    (RESULTS / "serving.json").write_text(
        json.dumps({**meta, "same_predictions": same, "results": results}, indent=2)
    )
    (RESULTS / "serving.md").write_text(f"# modelreg serve vs mlflow models serve\n\n{table}\n\n{note}\n")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
