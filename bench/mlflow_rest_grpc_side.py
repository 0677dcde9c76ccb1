"""modelreg's gRPC client's side of the REST endpoint benchmark (the project venv).

The operations bench/mlflow_rest_side.py times through the ``mlflow`` client, through modelreg's
own client against the same services the endpoint relays to: the difference of the two p50s is
what the endpoint adds. Prints one JSON document of timings.
"""

from __future__ import annotations

import sys

import common
import rest_ops
from common import OpResult
from modelreg_side import ModelregBench, modelreg_version

import modelreg
import modelreg.pyfunc
from modelreg import Metric, Param, RunTag


class GrpcBench(ModelregBench):
    def log_batch(self, n: int) -> OpResult:
        return rest_ops.log_batch(self.client, self.new_run(), n, Metric, Param, RunTag)

    def load_model_alias(self, n: int) -> OpResult:
        if self._walkthrough is None:
            self.log_model_register(1)
        return rest_ops.load_model_alias(self.client, n, modelreg.pyfunc.load_model)


def main(argv: list[str] | None = None) -> None:
    def extra(parser: object) -> None:
        parser.add_argument("--tracking-uri", required=True)  # type: ignore[attr-defined]
        parser.add_argument("--registry-uri", required=True)  # type: ignore[attr-defined]

    ns = common.parse_side_args(argv, extra)
    args = common.side_args(ns)
    bench = GrpcBench(ns.tracking_uri, ns.registry_uri, args)
    results = rest_ops.run(args.ops, args.quick, rest_ops.implementations(bench))
    common.emit(results, system="modelreg-grpc", version=modelreg_version(), python=sys.version.split()[0])


if __name__ == "__main__":
    main()
