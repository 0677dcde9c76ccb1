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

import common
import mlflow
import mlflow.pyfunc
import rest_ops
from common import OpResult
from mlflow.entities import Metric, Param, RunTag
from mlflow_side import MlflowBench


class RestBench(MlflowBench):
    def log_batch(self, n: int) -> OpResult:
        return rest_ops.log_batch(self.client, self.new_run(), n, Metric, Param, RunTag)

    def load_model_alias(self, n: int) -> OpResult:
        if self._walkthrough is None:
            self.log_model_register(1)
        return rest_ops.load_model_alias(self.client, n, mlflow.pyfunc.load_model)


def main(argv: list[str] | None = None) -> None:
    ns = common.parse_side_args(argv, lambda p: p.add_argument("--tracking-uri", required=True))
    args = common.side_args(ns)
    os.environ["TMPDIR"] = str(args.workdir)  # load_model's downloads stay in the workdir
    tempfile.tempdir = None
    bench = RestBench(ns.tracking_uri, args)
    results = rest_ops.run(args.ops, args.quick, rest_ops.implementations(bench))
    shutil.rmtree(args.workdir / "download", ignore_errors=True)
    common.emit(results, system="mlflow", version=mlflow.__version__, python=sys.version.split()[0])


if __name__ == "__main__":
    main()
