"""A bare HTTP client's side of the REST endpoint benchmark (the project venv, standard library).

The single-request operations of bench/rest_ops.py sent as MLflow's client sends them (the same
paths and JSON bodies), over one keep-alive connection with ``http.client``: what remains of the
time is the endpoint and the services, without the ``mlflow`` client's own work per call, so the
difference from modelreg's gRPC client (bench/mlflow_rest_grpc_side.py) is what the endpoint adds.
Prints one JSON document of timings.
"""

from __future__ import annotations

import http.client
import json
import sys
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlencode, urlsplit

import common
import rest_ops
from common import OpResult

API = "/api/2.0/mlflow"


class Http:
    """One keep-alive connection per thread; every answer must be 200."""

    def __init__(self, url: str) -> None:
        self.netloc = urlsplit(url).netloc
        self.connection = http.client.HTTPConnection(self.netloc, timeout=60)

    def call(self, method: str, path: str, body: dict[str, Any] | None = None, **query: str) -> Any:
        target = API + path + (f"?{urlencode(query)}" if query else "")
        payload = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"} if payload is not None else {}
        try:
            self.connection.request(method, target, body=payload, headers=headers)
            response = self.connection.getresponse()
        except (BrokenPipeError, ConnectionResetError, http.client.RemoteDisconnected):
            # The server closed the connection while it sat idle (MLflow's after 5 s, while the
            # other connections populate an experiment): reconnect and send again, as requests does.
            self.connection.close()
            self.connection.request(method, target, body=payload, headers=headers)
            response = self.connection.getresponse()
        data = response.read()
        if response.status != 200:
            raise RuntimeError(f"{method} {path}: {response.status} {data[:300]!r}")
        return json.loads(data)


class HttpBench:
    def __init__(self, url: str, args: common.SideArgs) -> None:
        self.url = url
        self.args = args
        self.http = Http(url)
        self.experiment_id = self.create_experiment()

    def create_experiment(self) -> str:
        answer = self.http.call("POST", "/experiments/create", {"name": f"bench-http-{uuid.uuid4().hex[:8]}"})
        return str(answer["experiment_id"])

    def new_run(self, experiment_id: str | None = None, http: Http | None = None, name: str = "") -> str:
        body = {"experiment_id": experiment_id or self.experiment_id, "start_time": now_ms()}
        if name:
            body["run_name"] = name
        return str((http or self.http).call("POST", "/runs/create", body)["run"]["info"]["run_id"])

    def create_run(self, n: int) -> OpResult:
        return common.summarize("create_run", common.timed(lambda i: self.new_run(), n))

    def log_metric(self, n: int) -> OpResult:
        run_id = self.new_run()

        def log(i: int) -> None:
            body = {"run_id": run_id, "key": "loss", "value": i * 0.01, "timestamp": now_ms(), "step": i}
            self.http.call("POST", "/runs/log-metric", body)

        return common.summarize("log_metric", common.timed(log, n))

    def log_batch(self, n: int) -> OpResult:
        run_id = self.new_run()

        def send(i: int) -> None:
            metrics, params, tags = rest_ops.batch_items(i)
            timestamp = now_ms()
            body = {
                "run_id": run_id,
                "metrics": [{"key": k, "value": v, "timestamp": timestamp, "step": i} for k, v in metrics],
                "params": [{"key": k, "value": v} for k, v in params],
                "tags": [{"key": k, "value": v} for k, v in tags],
            }
            self.http.call("POST", "/runs/log-batch", body)

        return common.summarize("log_batch", common.timed(send, n))

    def get_run(self, n: int) -> OpResult:
        run_id = self.new_run()
        timestamp = now_ms()
        self.http.call(
            "POST",
            "/runs/log-batch",
            {
                "run_id": run_id,
                "params": [{"key": k, "value": v} for k, v in common.param_items(common.GET_RUN_PARAMS)],
                "metrics": [
                    {"key": k, "value": v, "timestamp": timestamp, "step": 0}
                    for k, v in common.metric_items(common.GET_RUN_METRICS)
                ],
            },
        )
        return common.summarize(
            "get_run", common.timed(lambda i: self.http.call("GET", "/runs/get", run_id=run_id), n)
        )

    def search_runs(self, n: int) -> OpResult:
        count = self.args.search_runs
        experiment_id = self.create_experiment()
        timestamp = now_ms()

        def populate(rows: list[tuple[str, float, float, str]]) -> None:
            http = Http(self.url)
            for name, rmse, r2, alpha in rows:
                run_id = self.new_run(experiment_id, http, name)
                metrics = [("rmse", rmse), ("r2", r2)]
                body = {
                    "run_id": run_id,
                    "metrics": [
                        {"key": k, "value": v, "timestamp": timestamp, "step": 0} for k, v in metrics
                    ],
                    "params": [{"key": "alpha", "value": alpha}],
                }
                http.call("POST", "/runs/log-batch", body)

        rows = list(common.search_run_rows(count))
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(populate, [rows[i::4] for i in range(4)]))
        expected = sum(1 for _, rmse, _, _ in rows if rmse < 0.5)
        body = {
            "experiment_ids": [experiment_id],
            "filter": common.SEARCH_FILTER,
            "order_by": [common.SEARCH_ORDER_BY],
            "max_results": 1000,
        }

        def search(i: int) -> None:
            found = self.http.call("POST", "/runs/search", body).get("runs", [])
            assert len(found) == expected, (len(found), expected)

        return common.summarize("search_runs", common.timed(search, n), runs=count, returned=expected)

    def implementations(self) -> dict[str, Callable[[int], OpResult]]:
        return {op.name: getattr(self, op.name) for op in rest_ops.REST_OPS if op.single_request}


def now_ms() -> int:
    return int(time.time() * 1000)


def main(argv: list[str] | None = None) -> None:
    ns = common.parse_side_args(argv, lambda p: p.add_argument("--tracking-uri", required=True))
    args = common.side_args(ns)
    bench = HttpBench(ns.tracking_uri, args)
    implementations = bench.implementations()
    ops = tuple(op for op in args.ops if op in implementations)
    results = rest_ops.run(ops, args.quick, implementations)
    common.emit(results, system="http.client", python=sys.version.split()[0])


if __name__ == "__main__":
    main()
