"""The operations of the MLflow REST endpoint benchmark (`bench/mlflow_rest.py`), shared by its sides.

Standard library only, like bench/common.py: imported under the MLflow venv (the unmodified
``mlflow`` client, against MLflow's server and against modelreg's endpoint) and under the project
venv (modelreg's gRPC client against the same services, to show what the endpoint adds).
"""

from __future__ import annotations

import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import common
from common import OpResult

# One log_batch: what a training step of a modest model logs at once. Params are new keys each
# call, so the 220 calls of a full run (warm-up included) stay under modelreg's 1,000 per run.
BATCH_METRICS = 100
BATCH_PARAMS = 4
BATCH_TAGS = 5


@dataclass(frozen=True)
class RestOp:
    """``single_request``: one HTTP request through the endpoint, one gRPC call through the
    client, so the difference of their p50s is what the endpoint adds. ``kind``: "latency" (p50
    in ms) or "throughput" (MiB/s)."""

    name: str
    n: int
    kind: str = "latency"
    single_request: bool = False


REST_OPS: tuple[RestOp, ...] = (
    RestOp("create_run", 200, single_request=True),
    RestOp("log_metric", 500, single_request=True),
    RestOp("log_batch", 200, single_request=True),
    RestOp("get_run", 300, single_request=True),
    RestOp("search_runs", 20, single_request=True),
    RestOp("log_model_register", 5),
    RestOp("load_model_alias", 20),
    RestOp("artifact_upload", 5, "throughput"),
    RestOp("artifact_download", 5, "throughput"),
)
REST_OPS_BY_NAME = {op.name: op for op in REST_OPS}


def batch_items(i: int) -> tuple[list[tuple[str, float]], list[tuple[str, str]], list[tuple[str, str]]]:
    """(metrics, params, tags) of the i-th log_batch: params are new keys each call (they are
    immutable), metrics a step of the same keys, tags overwritten."""
    metrics = common.metric_items(BATCH_METRICS, seed=i)
    params = [(f"p{i}_{k}", str(k)) for k in range(BATCH_PARAMS)]
    tags = [(f"tag_{k}", f"step-{i}") for k in range(BATCH_TAGS)]
    return metrics, params, tags


def log_batch(
    client: Any,
    run_id: str,
    n: int,
    metric: Callable[[str, float, int, int], Any],
    param: Callable[[str, str], Any],
    tag: Callable[[str, str], Any],
) -> OpResult:
    """``n`` log_batch calls of batch_items through ``client`` (either side's: mlflow's or
    modelreg's); ``metric``, ``param`` and ``tag`` are that client's Metric(key, value,
    timestamp, step), Param and RunTag."""
    now = int(time.time() * 1000)

    def send(i: int) -> None:
        metrics, params, tags = batch_items(i)
        client.log_batch(
            run_id,
            metrics=[metric(key, value, now, i) for key, value in metrics],
            params=[param(key, value) for key, value in params],
            tags=[tag(key, value) for key, value in tags],
        )

    return common.summarize("log_batch", common.timed(send, n))


def load_model_alias(client: Any, n: int, load_model: Callable[[str], Any]) -> OpResult:
    """``models:/<name>@champion`` loaded ``n`` times by ``load_model``: the alias resolved, the
    version's files downloaded, loaded. The alias first points at the walkthrough model's latest
    version (``client``: mlflow's or modelreg's; both take the version as a string)."""
    versions = client.search_model_versions(f"name='{common.WALKTHROUGH_MODEL}'")
    latest = max(int(v.version) for v in versions)
    client.set_registered_model_alias(common.WALKTHROUGH_MODEL, common.ALIAS, str(latest))
    uri = f"models:/{common.WALKTHROUGH_MODEL}@{common.ALIAS}"
    return common.summarize("load_model_alias", common.timed(lambda i: load_model(uri), n, warmup=1))


def implementations(bench: object) -> dict[str, Callable[[int], OpResult]]:
    """A side's bench object's method of each REST_OPS operation, by name."""
    return {op.name: getattr(bench, op.name) for op in REST_OPS}


def run(
    ops: tuple[str, ...], quick: bool, implementations: dict[str, Callable[[int], OpResult]]
) -> list[OpResult]:
    """Runs the requested operations in REST_OPS order; a failing one is recorded, not fatal
    (an endpoint that lacks what an operation needs shows as an error in its cell)."""
    results: list[OpResult] = []
    for spec in REST_OPS:
        if spec.name not in ops:
            continue
        n = common.scaled(spec.n, quick)
        started = time.perf_counter()
        try:
            result = implementations[spec.name](n)
        except Exception as exc:
            traceback.print_exc(file=sys.stderr)
            result = OpResult(op=spec.name, n=n, error=f"{type(exc).__name__}: {exc}")
        result.op = spec.name
        shown = f"p50={result.p50_ms:.2f} ms" if result.p50_ms is not None else f"error={result.error}"
        common.log(f"  {spec.name:<20} n={n:<5} {shown}  ({time.perf_counter() - started:.1f}s)")
        results.append(result)
    return results
