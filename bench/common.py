"""What both benchmark sides share: the operation list, the data, the timing and the result format.

Standard library only: this module is imported by bench/mlflow_side.py under the MLflow venv's
interpreter and by bench/modelreg_side.py under the project venv, so that both systems run the
same operations, with the same sizes and the same data, timed the same way.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

QUICK_DIVISOR = 5

# Data sizes an operation is measured against. --quick divides them too (a smoke run that fits in
# two minutes: populating 1,000 runs and 300 versions through MLflow alone would take most of
# that); the full run is the one whose numbers count.
GET_RUN_PARAMS = 100
GET_RUN_METRICS = 100
SEARCH_RUNS = 1_000
SEARCH_FILTER = "metrics.rmse < 0.5"
SEARCH_ORDER_BY = "metrics.rmse ASC"
MODEL_VERSIONS = 300
METRIC_BATCH = 1_000
# Points per LogMetrics message on the modelreg side: the protocol allows 10,000, and the fastest
# path is what the issue asks each client for.
STREAM_BATCH = 10_000
ARTIFACT_MIB = 64
CONCURRENT_THREADS = 16

# Names of the registered models every side creates.
MODEL = "bench-model"
WARM_MODEL = "bench-model-warmup"
CONCURRENT_MODEL = "bench-concurrent"
WALKTHROUGH_MODEL = "HousePricePredictor"
AUTOLOG_MODEL = "bench-autolog-pipeline"
ALIAS = "champion"


@dataclass(frozen=True)
class OpSpec:
    """One benchmarked operation and the target it is judged against.

    kind: "latency" (ratio of p50s, MLflow/modelreg), "throughput" (ratio of rates,
    modelreg/MLflow), "absolute" (modelreg p50 under max_ms), "concurrency" (no errors, no
    duplicates) or "info" (reported, not judged).
    round_trips: network round trips a single call needs, for the floor check (None: not a
    single-call operation).
    """

    name: str
    n: int
    kind: str
    unit: str = "ms"
    min_ratio: float | None = None
    max_ms: float | None = None
    round_trips: int | None = None

    def count(self, quick: bool) -> int:
        return scaled(self.n, quick)


def scaled(n: int, quick: bool) -> int:
    return max(1, n // QUICK_DIVISOR) if quick else n


OPS: tuple[OpSpec, ...] = (
    OpSpec("create_run", 200, "latency", min_ratio=10, round_trips=1),
    OpSpec("log_metric", 1_000, "latency", min_ratio=10, round_trips=1),
    OpSpec("log_metrics_fastest", 100_000, "throughput", unit="metrics/s", min_ratio=20),
    OpSpec("log_param", 200, "latency", min_ratio=10, round_trips=1),
    OpSpec("get_run", 500, "latency", min_ratio=10, round_trips=1),
    OpSpec("search_runs", 20, "latency", min_ratio=10),
    # The registry asks tracking for the run and seals the source (side by side) before it
    # writes: the client's call plus those two.
    OpSpec("create_model_version", 300, "latency", min_ratio=5, round_trips=3),
    OpSpec("transition_stage", 100, "latency", min_ratio=10, round_trips=1),
    OpSpec("set_alias", 1_000, "latency", min_ratio=10, round_trips=1),
    OpSpec("get_by_alias", 1_000, "latency", min_ratio=10, round_trips=1),
    OpSpec("get_latest_versions", 500, "latency", min_ratio=10, round_trips=1),
    OpSpec("search_model_versions", 50, "latency", min_ratio=10),
    OpSpec("artifact_upload", 5, "throughput", unit="MiB/s", min_ratio=1.2),
    OpSpec("artifact_download", 5, "throughput", unit="MiB/s", min_ratio=3),
    OpSpec("log_model_register", 5, "absolute", max_ms=300),
    OpSpec("load_model", 20, "absolute", max_ms=50),
    OpSpec("predict", 200, "info"),
    # An autologged fit of a scaler + ridge pipeline: params, training metrics, the model logged
    # and registered (what autologging adds to a fit is most of it); then loading that model.
    OpSpec("autolog_fit_register", 5, "info"),
    OpSpec("autolog_load_model", 20, "info"),
    OpSpec("concurrent_register", 400, "concurrency", unit="s"),
)
OPS_BY_NAME = {op.name: op for op in OPS}

# modelreg only (--scale): the same searches against a hundred times the runs and thirty-odd
# times the versions, each returning its first page, to show how search scales.
SCALE_RUNS = 100_000
SCALE_VERSIONS = 10_000
SCALE_OPS: tuple[OpSpec, ...] = (
    OpSpec("search_runs_100k", 20, "absolute", max_ms=50),
    OpSpec("search_model_versions_10k", 50, "absolute", max_ms=50),
)
SCALE_OPS_BY_NAME = {op.name: op for op in SCALE_OPS}


@dataclass
class OpResult:
    """The measurement of one operation on one system; `value` is the rate for throughput ops
    and the wall time in seconds for the concurrency op."""

    op: str
    n: int
    p50_ms: float | None = None
    p99_ms: float | None = None
    value: float | None = None
    unit: str = "ms"
    extra: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


def percentile(samples_ns: list[int], q: float) -> float:
    """Nearest-rank percentile of nanosecond samples, in milliseconds."""
    ordered = sorted(samples_ns)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1] / 1e6


def summarize(op: str, samples_ns: list[int], **extra: Any) -> OpResult:
    return OpResult(
        op=op,
        n=len(samples_ns),
        p50_ms=percentile(samples_ns, 50),
        p99_ms=percentile(samples_ns, 99),
        extra=extra,
    )


def warmup_count(n: int) -> int:
    return max(1, min(20, n // 10))


def timed(fn: Callable[[int], object], n: int, warmup: int | None = None) -> list[int]:
    """Runs the warm-up calls fn(n), fn(n+1), ... then returns the durations of fn(0..n-1) in ns.

    The index gives operations that need a distinct key per call (params, versions) one, and
    lets an operation send its warm-up calls elsewhere (i >= n).
    """
    for i in range(warmup_count(n) if warmup is None else warmup):
        fn(n + i)
    samples: list[int] = []
    for i in range(n):
        start = time.perf_counter_ns()
        fn(i)
        samples.append(time.perf_counter_ns() - start)
    return samples


# --- deterministic data, identical on both sides ---------------------------------------------


def param_items(count: int) -> list[tuple[str, str]]:
    return [(f"param_{i:03d}", f"value-{i}") for i in range(count)]


def metric_items(count: int, seed: int = 0) -> list[tuple[str, float]]:
    rng = random.Random(seed)
    return [(f"metric_{i:03d}", rng.random()) for i in range(count)]


def search_run_rows(count: int) -> Iterator[tuple[str, float, float, str]]:
    """(run_name, rmse, r2, alpha) for the search_runs population."""
    rng = random.Random(42)
    for i in range(count):
        yield f"search-{i:06d}", rng.random(), rng.random(), f"{rng.choice((0.1, 0.5, 1.0))}"


def metric_stream_points(total: int) -> Iterator[tuple[str, float, int]]:
    """(key, value, step) for the fastest-path metric logging: a training loop of 10 metrics."""
    for i in range(total):
        yield f"loss_{i % 10}", float(i) * 0.001, i // 10


def walkthrough_frame(seed: int = 0) -> tuple[Any, Any]:
    """The walkthrough's data: a 100-row, 3-feature pandas DataFrame and its target."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.normal(size=(100, 3)), columns=["rooms", "area", "age"])
    target = 3.0 * frame["rooms"] + 2.0 * frame["area"] - 0.5 * frame["age"] + rng.normal(0, 0.1, 100)
    return frame, target


def autolog_pipeline() -> Any:
    """The autologged model: a scaler and a ridge regression, fitted on the walkthrough's data."""
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    return Pipeline([("scaler", StandardScaler()), ("ridge", Ridge(alpha=0.5))])


def autolog_fit_register(system: Any, experiment_id: str, n: int) -> OpResult:
    """Autologged fits of the pipeline, each logging and registering it; ``system`` is the
    ``mlflow`` or the ``modelreg`` module (the calls are the same)."""
    frame, target = walkthrough_frame()
    system.set_experiment(experiment_id=experiment_id)
    system.sklearn.autolog(registered_model_name=AUTOLOG_MODEL)
    try:
        samples = timed(lambda i: autolog_pipeline().fit(frame, target), n, warmup=1)
    finally:
        system.sklearn.autolog(disable=True)
    return summarize("autolog_fit_register", samples)


def autolog_load_model(system: Any, n: int) -> OpResult:
    """Loads the latest autologged version with ``system.pyfunc``; checks its predictions once."""
    uri = f"models:/{AUTOLOG_MODEL}/latest"
    frame, _ = walkthrough_frame(seed=1)
    expected = autolog_pipeline().fit(*walkthrough_frame()).predict(frame)
    matches = bool((abs(system.pyfunc.load_model(uri).predict(frame) - expected) < 1e-9).all())
    samples = timed(lambda i: system.pyfunc.load_model(uri), n, warmup=1)
    return summarize("autolog_load_model", samples, matches=matches)


def write_model_dir(root: Path) -> Path:
    """A small logged-model directory (MLmodel, weights, requirements) to register from."""
    model_dir = root / "model"
    model_dir.mkdir(parents=True, exist_ok=True)
    (model_dir / "MLmodel").write_text("flavors:\n  python_function:\n    loader_module: bench\n")
    (model_dir / "model.bin").write_bytes(random.Random(7).randbytes(64 * 1024))
    (model_dir / "requirements.txt").write_text("scikit-learn\n")
    return model_dir


# --- the command line both sides share -------------------------------------------------------


@dataclass(frozen=True)
class SideArgs:
    quick: bool
    ops: tuple[str, ...]
    workdir: Path
    blob: Path

    @property
    def search_runs(self) -> int:
        return scaled(SEARCH_RUNS, self.quick)

    @property
    def model_versions(self) -> int:
        return scaled(MODEL_VERSIONS, self.quick)


def parse_side_args(
    argv: list[str] | None, extra: Callable[[argparse.ArgumentParser], object]
) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--ops", default=",".join(op.name for op in OPS), help="comma-separated op names")
    parser.add_argument("--workdir", type=Path, required=True, help="scratch directory for this side")
    parser.add_argument("--blob", type=Path, required=True, help=f"the {ARTIFACT_MIB} MiB artifact file")
    extra(parser)
    return parser.parse_args(argv)


def side_args(ns: argparse.Namespace) -> SideArgs:
    return SideArgs(quick=ns.quick, ops=tuple(ns.ops.split(",")), workdir=ns.workdir, blob=ns.blob)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run_ops(
    ops: tuple[str, ...], quick: bool, implementations: dict[str, Callable[[int], OpResult]]
) -> list[OpResult]:
    """Runs the requested operations in the canonical order; a failing op is recorded, not fatal."""
    results: list[OpResult] = []
    for spec in OPS + SCALE_OPS:
        if spec.name not in ops or spec.name not in implementations:
            continue
        n = spec.count(quick)
        started = time.perf_counter()
        try:
            result = implementations[spec.name](n)
        except Exception as exc:  # a broken op must not hide the others' results
            traceback.print_exc(file=sys.stderr)
            result = OpResult(op=spec.name, n=n, error=f"{type(exc).__name__}: {exc}")
        result.unit = spec.unit if result.unit == "ms" else result.unit
        shown = f"p50={result.p50_ms:.2f} ms" if result.p50_ms is not None else f"value={result.value}"
        log(f"  {spec.name:<26} n={n:<7} {shown}  ({time.perf_counter() - started:.1f}s)")
        results.append(result)
    return results


def emit(results: list[OpResult], **meta: Any) -> None:
    """The side's only stdout output: one JSON document the harness parses."""
    json.dump({"meta": meta, "results": [asdict(r) for r in results]}, sys.stdout)
    sys.stdout.write("\n")
    sys.stdout.flush()
