"""The MLflow side of the benchmark: runs under .venv-bench-mlflow's interpreter.

Drives an MLflow tracking server (started by bench/run.py) through MLflow's own Python client,
with the operations and data of bench/common.py, and prints one JSON document of timings.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import tempfile
import threading
import time
import uuid
import warnings
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import cached_property
from pathlib import Path
from typing import Any

import common
import mlflow
import mlflow.pyfunc
import mlflow.sklearn
from common import OpResult
from mlflow import MlflowClient
from mlflow.entities import Metric, Param

# MLflow 3 warns on every stage call (stages are deprecated there) and on models logged without
# a signature; the warnings are noise in the benchmark's output, not a change in behaviour.
warnings.filterwarnings("ignore")
# One INFO line per registered version ("Waiting up to 300 seconds ...") would drown the progress.
logging.getLogger("mlflow").setLevel(logging.WARNING)


class MlflowBench:
    def __init__(self, tracking_uri: str, args: common.SideArgs) -> None:
        self.uri = tracking_uri
        self.args = args
        mlflow.set_tracking_uri(tracking_uri)
        self.client = MlflowClient(tracking_uri)
        self.experiment_id = self.client.create_experiment(f"bench-{uuid.uuid4().hex[:8]}")
        self._versions_ready = False
        self._walkthrough: Any = None
        self._autologged = False

    def new_run(self, experiment_id: str | None = None) -> str:
        return str(self.client.create_run(experiment_id or self.experiment_id).info.run_id)

    # --- tracking ---------------------------------------------------------------------------

    def create_run(self, n: int) -> OpResult:
        return common.summarize(
            "create_run", common.timed(lambda i: self.client.create_run(self.experiment_id), n)
        )

    def log_metric(self, n: int) -> OpResult:
        run_id = self.new_run()
        samples = common.timed(lambda i: self.client.log_metric(run_id, "loss", i * 0.01, step=i), n)
        return common.summarize("log_metric", samples)

    def log_metrics_fastest(self, n: int) -> OpResult:
        """log_batch of 1,000 metrics per call: MLflow's fastest synchronous path."""
        points = list(common.metric_stream_points(n))
        batches = [points[i : i + common.METRIC_BATCH] for i in range(0, n, common.METRIC_BATCH)]
        run_id = self.new_run()
        now = int(time.time() * 1000)

        def send(i: int) -> None:
            batch = batches[i % len(batches)]
            metrics = [Metric(key, value, now, step) for key, value, step in batch]
            self.client.log_batch(run_id if i < len(batches) else warm_run, metrics=metrics)

        warm_run = self.new_run()
        samples = common.timed(send, len(batches), warmup=1)
        rate = n / (sum(samples) / 1e9)
        result = common.summarize("log_metrics_fastest", samples, batch=common.METRIC_BATCH, points=n)
        result.value = rate
        result.n = n
        return result

    def log_param(self, n: int) -> OpResult:
        run_id = self.new_run()
        return common.summarize(
            "log_param", common.timed(lambda i: self.client.log_param(run_id, f"p{i}", str(i)), n)
        )

    def get_run(self, n: int) -> OpResult:
        run_id = self.new_run()
        params = [Param(k, v) for k, v in common.param_items(common.GET_RUN_PARAMS)]
        now = int(time.time() * 1000)
        metrics = [Metric(k, v, now, 0) for k, v in common.metric_items(common.GET_RUN_METRICS)]
        self.client.log_batch(run_id, metrics=metrics, params=params)
        run = self.client.get_run(run_id)
        assert (
            len(run.data.params) == common.GET_RUN_PARAMS and len(run.data.metrics) == common.GET_RUN_METRICS
        )
        return common.summarize("get_run", common.timed(lambda i: self.client.get_run(run_id), n))

    def search_runs(self, n: int) -> OpResult:
        count = self.args.search_runs
        experiment_id = self.client.create_experiment(f"bench-search-{uuid.uuid4().hex[:8]}")
        now = int(time.time() * 1000)

        def populate(row: tuple[str, float, float, str]) -> None:
            name, rmse, r2, alpha = row
            run_id = str(self.client.create_run(experiment_id, run_name=name).info.run_id)
            self.client.log_batch(
                run_id,
                metrics=[Metric("rmse", rmse, now, 0), Metric("r2", r2, now, 0)],
                params=[Param("alpha", alpha)],
            )

        started = time.perf_counter()
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(populate, common.search_run_rows(count)))
        common.log(f"    populated {count} runs in {time.perf_counter() - started:.1f}s")
        expected = sum(1 for _, rmse, _, _ in common.search_run_rows(count) if rmse < 0.5)

        def search(i: int) -> None:
            runs = self.client.search_runs(
                [experiment_id], common.SEARCH_FILTER, order_by=[common.SEARCH_ORDER_BY], max_results=1000
            )
            assert len(runs) == expected, (len(runs), expected)

        return common.summarize("search_runs", common.timed(search, n), runs=count, returned=expected)

    # --- registry ---------------------------------------------------------------------------

    @cached_property
    def model_run(self) -> str:
        """A run holding a logged model directory, the lineage every version points at."""
        run_id = self.new_run()
        model_dir = common.write_model_dir(self.args.workdir / "model-src")
        self.client.log_artifacts(run_id, str(model_dir), "model")
        return run_id

    def register(self, name: str, client: MlflowClient | None = None) -> int:
        version = (client or self.client).create_model_version(
            name, f"runs:/{self.model_run}/model", run_id=self.model_run
        )
        return int(version.version)

    def create_model_version(self, n: int) -> OpResult:
        self.client.create_registered_model(common.MODEL)
        self.client.create_registered_model(common.WARM_MODEL)

        def register(i: int) -> None:
            self.register(common.MODEL if i < n else common.WARM_MODEL)

        samples = common.timed(register, n)
        self.ensure_versions()
        return common.summarize("create_model_version", samples)

    def ensure_versions(self) -> None:
        """Tops the model up to MODEL_VERSIONS versions (untimed) for the read benchmarks."""
        if self._versions_ready:
            return
        existing = self.client.search_model_versions(f"name='{common.MODEL}'")
        if not existing:
            self.client.create_registered_model(common.MODEL)
            self.client.create_registered_model(common.WARM_MODEL)
        # Four at a time: untimed set-up, and a large share of the quick run's budget when serial.
        jobs = [common.MODEL] * (self.args.model_versions - len(existing)) + [common.WARM_MODEL] * 20
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(self.register, jobs))
        self._versions_ready = True

    def transition_stage(self, n: int) -> OpResult:
        self.ensure_versions()

        def transition(i: int) -> None:
            name, version = (common.MODEL, i + 1) if i < n else (common.WARM_MODEL, i - n + 1)
            self.client.transition_model_version_stage(
                name, str(version), "Production", archive_existing_versions=True
            )

        return common.summarize("transition_stage", common.timed(transition, n))

    def set_alias(self, n: int) -> OpResult:
        self.ensure_versions()
        samples = common.timed(
            lambda i: self.client.set_registered_model_alias(
                common.MODEL, common.ALIAS, str(i % self.args.model_versions + 1)
            ),
            n,
        )
        return common.summarize("set_alias", samples)

    def get_by_alias(self, n: int) -> OpResult:
        self.ensure_versions()
        self.client.set_registered_model_alias(common.MODEL, common.ALIAS, "7")
        samples = common.timed(
            lambda i: self.client.get_model_version_by_alias(common.MODEL, common.ALIAS), n
        )
        return common.summarize("get_by_alias", samples)

    def get_latest_versions(self, n: int) -> OpResult:
        self.ensure_versions()
        samples = common.timed(
            lambda i: self.client.get_latest_versions(common.MODEL, stages=["Production"]), n
        )
        return common.summarize("get_latest_versions", samples, versions=self.args.model_versions)

    def search_model_versions(self, n: int) -> OpResult:
        self.ensure_versions()

        def search(i: int) -> None:
            found = self.client.search_model_versions(f"name='{common.MODEL}'")
            assert len(found) == self.args.model_versions, len(found)

        return common.summarize(
            "search_model_versions", common.timed(search, n), versions=self.args.model_versions
        )

    # --- artifacts --------------------------------------------------------------------------

    @cached_property
    def artifact_run(self) -> str:
        return self.new_run()

    def artifact_upload(self, n: int) -> OpResult:
        blob = str(self.args.blob)
        samples = common.timed(
            lambda i: self.client.log_artifact(self.artifact_run, blob, f"up{i}"), n, warmup=1
        )
        return throughput("artifact_upload", samples)

    def artifact_download(self, n: int) -> OpResult:
        self.client.log_artifact(self.artifact_run, str(self.args.blob), "down")
        target = self.args.workdir / "download"

        def download(i: int) -> None:
            local = self.client.download_artifacts(
                self.artifact_run, f"down/{self.args.blob.name}", str(target)
            )
            Path(local).unlink()

        target.mkdir(parents=True, exist_ok=True)
        return throughput("artifact_download", common.timed(download, n, warmup=1))

    # --- the walkthrough ----------------------------------------------------------------------

    def log_model_register(self, n: int) -> OpResult:
        from sklearn.linear_model import LinearRegression

        frame, target = common.walkthrough_frame()
        model = LinearRegression().fit(frame, target)
        mlflow.set_experiment(experiment_id=self.experiment_id)
        samples: list[int] = []
        for i in range(n + 1):  # the first call is the warm-up
            with mlflow.start_run(run_name=f"Linear_Regression_V{i + 1}"):
                mlflow.log_param("alpha", 0.5)
                start = time.perf_counter_ns()
                mlflow.sklearn.log_model(
                    sk_model=model,
                    name="linear_regression_model",
                    registered_model_name=common.WALKTHROUGH_MODEL,
                )
                samples.append(time.perf_counter_ns() - start)
        self._walkthrough = model
        return common.summarize("log_model_register", samples[1:])

    def ensure_production(self) -> Any:
        if self._walkthrough is None:
            self.log_model_register(1)
        latest = max(
            int(v.version) for v in self.client.search_model_versions(f"name='{common.WALKTHROUGH_MODEL}'")
        )
        self.client.transition_model_version_stage(
            common.WALKTHROUGH_MODEL, str(latest), "Production", archive_existing_versions=True
        )
        return self._walkthrough

    def load_model(self, n: int) -> OpResult:
        self.ensure_production()
        uri = f"models:/{common.WALKTHROUGH_MODEL}/Production"
        return common.summarize(
            "load_model", common.timed(lambda i: mlflow.pyfunc.load_model(uri), n, warmup=1)
        )

    def predict(self, n: int) -> OpResult:
        trained = self.ensure_production()
        loaded = mlflow.pyfunc.load_model(f"models:/{common.WALKTHROUGH_MODEL}/Production")
        frame, _ = common.walkthrough_frame(seed=1)
        matches = bool((abs(loaded.predict(frame) - trained.predict(frame)) < 1e-9).all())
        return common.summarize("predict", common.timed(lambda i: loaded.predict(frame), n), matches=matches)

    # --- autologging ------------------------------------------------------------------------

    def autolog_fit_register(self, n: int) -> OpResult:
        self._autologged = True
        return common.autolog_fit_register(mlflow, self.experiment_id, n)

    def autolog_load_model(self, n: int) -> OpResult:
        if not self._autologged:
            self.autolog_fit_register(1)
        return common.autolog_load_model(mlflow, n)

    # --- concurrency ------------------------------------------------------------------------

    def concurrent_register(self, n: int) -> OpResult:
        self.client.create_registered_model(common.CONCURRENT_MODEL)
        self.model_run  # noqa: B018 - the lineage run exists before the clock starts
        per_thread = n // common.CONCURRENT_THREADS
        versions: list[int] = []
        errors: Counter[str] = Counter()
        lock = threading.Lock()

        def worker() -> None:
            client = MlflowClient(self.uri)
            for _ in range(per_thread):
                try:
                    version = self.register(common.CONCURRENT_MODEL, client)
                except Exception as exc:  # every failure is a measured outcome
                    with lock:
                        errors[type(exc).__name__] += 1
                    continue
                with lock:
                    versions.append(version)

        started = time.perf_counter()
        threads = [threading.Thread(target=worker) for _ in range(common.CONCURRENT_THREADS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - started
        stored = self.client.search_model_versions(f"name='{common.CONCURRENT_MODEL}'")
        duplicates = sum(count - 1 for count in Counter(versions).values() if count > 1)
        return OpResult(
            op="concurrent_register",
            n=per_thread * common.CONCURRENT_THREADS,
            value=elapsed,
            unit="s",
            extra={
                "threads": common.CONCURRENT_THREADS,
                "errors": sum(errors.values()),
                "error_kinds": dict(errors),
                "duplicates": duplicates,
                "stored": len(stored),
                "distinct_stored": len({int(v.version) for v in stored}),
            },
        )

    def implementations(self) -> dict[str, Callable[[int], OpResult]]:
        return {op.name: getattr(self, op.name) for op in common.OPS}


def throughput(op: str, samples: list[int]) -> OpResult:
    result = common.summarize(op, samples, mib=common.ARTIFACT_MIB)
    assert result.p50_ms is not None
    result.value = common.ARTIFACT_MIB / (result.p50_ms / 1000)
    return result


def main(argv: list[str] | None = None) -> None:
    ns = common.parse_side_args(argv, lambda p: p.add_argument("--tracking-uri", required=True))
    args = common.side_args(ns)
    # Artifacts downloaded by load_model go to a temp dir; keep them inside the workdir.
    os.environ["TMPDIR"] = str(args.workdir)
    tempfile.tempdir = None
    bench = MlflowBench(ns.tracking_uri, args)
    results = common.run_ops(args.ops, args.quick, bench.implementations())
    shutil.rmtree(args.workdir / "download", ignore_errors=True)
    common.emit(results, system="mlflow", version=mlflow.__version__, python=sys.version.split()[0])


if __name__ == "__main__":
    main()
