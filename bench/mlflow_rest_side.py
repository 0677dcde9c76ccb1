"""The unmodified ``mlflow`` client's side of the REST endpoint benchmark (the MLflow venv).

The same script against MLflow's own server and against modelreg's MLflow endpoint
(``--tracking-uri``): bench/mlflow_side.py's operations, plus one ``log_batch`` and loading a
model by alias. Prints one JSON document of timings, as the other sides do.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable

import common
import mlflow
import mlflow.pyfunc
import rest_ops
from common import OpResult
from mlflow.entities import Metric, Param, RunTag
from mlflow_side import MlflowBench


class RestBench(MlflowBench):
    def log_batch(self, n: int) -> OpResult:
        run_id = self.new_run()
        now = int(time.time() * 1000)

        def send(i: int) -> None:
            metrics, params, tags = rest_ops.batch_items(i)
            self.client.log_batch(
                run_id,
                metrics=[Metric(key, value, now, i) for key, value in metrics],
                params=[Param(key, value) for key, value in params],
                tags=[RunTag(key, value) for key, value in tags],
            )

        return common.summarize("log_batch", common.timed(send, n))

    def load_model_alias(self, n: int) -> OpResult:
        """``models:/<name>@champion``: the alias resolved, the version's files downloaded, loaded."""
        if self._walkthrough is None:
            self.log_model_register(1)
        versions = self.client.search_model_versions(f"name='{common.WALKTHROUGH_MODEL}'")
        latest = max(int(v.version) for v in versions)
        self.client.set_registered_model_alias(common.WALKTHROUGH_MODEL, common.ALIAS, str(latest))
        uri = f"models:/{common.WALKTHROUGH_MODEL}@{common.ALIAS}"
        return common.summarize(
            "load_model_alias", common.timed(lambda i: mlflow.pyfunc.load_model(uri), n, warmup=1)
        )

    def implementations(self) -> dict[str, Callable[[int], OpResult]]:
        return {op.name: getattr(self, op.name) for op in rest_ops.REST_OPS}


def main(argv: list[str] | None = None) -> None:
    ns = common.parse_side_args(argv, lambda p: p.add_argument("--tracking-uri", required=True))
    args = common.side_args(ns)
    os.environ["TMPDIR"] = str(args.workdir)  # load_model's downloads stay in the workdir
    tempfile.tempdir = None
    bench = RestBench(ns.tracking_uri, args)
    results = rest_ops.run(args.ops, args.quick, bench.implementations())
    shutil.rmtree(args.workdir / "download", ignore_errors=True)
    common.emit(results, system="mlflow", version=mlflow.__version__, python=sys.version.split()[0])


if __name__ == "__main__":
    main()
