"""modelreg's gRPC client's side of the REST endpoint benchmark (the project venv).

The operations bench/mlflow_rest_side.py times through the ``mlflow`` client, through modelreg's
own client against the same services the endpoint relays to: the difference of the two p50s is
what the endpoint adds. Prints one JSON document of timings.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

import common
import rest_ops
from common import OpResult
from modelreg_side import ModelregBench, modelreg_version

import modelreg
import modelreg.pyfunc
from modelreg import Metric, Param, RunTag


class GrpcBench(ModelregBench):
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
        if self._walkthrough is None:
            self.log_model_register(1)
        versions = self.client.search_model_versions(f"name='{common.WALKTHROUGH_MODEL}'")
        latest = max(int(v.version) for v in versions)
        self.client.set_registered_model_alias(common.WALKTHROUGH_MODEL, common.ALIAS, latest)
        uri = f"models:/{common.WALKTHROUGH_MODEL}@{common.ALIAS}"
        samples = common.timed(lambda i: modelreg.pyfunc.load_model(uri), n, warmup=1)
        return common.summarize("load_model_alias", samples)

    def implementations(self) -> dict[str, Callable[[int], OpResult]]:
        return {op.name: getattr(self, op.name) for op in rest_ops.REST_OPS}


def main(argv: list[str] | None = None) -> None:
    def extra(parser: object) -> None:
        parser.add_argument("--tracking-uri", required=True)  # type: ignore[attr-defined]
        parser.add_argument("--registry-uri", required=True)  # type: ignore[attr-defined]

    ns = common.parse_side_args(argv, extra)
    args = common.side_args(ns)
    bench = GrpcBench(ns.tracking_uri, ns.registry_uri, args)
    results = rest_ops.run(args.ops, args.quick, bench.implementations())
    common.emit(results, system="modelreg-grpc", version=modelreg_version(), python=sys.version.split()[0])


if __name__ == "__main__":
    main()
