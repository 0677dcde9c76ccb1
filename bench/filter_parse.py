"""How long the servers take to answer hostile search filters: `python bench/filter_parse.py`.

Starts the tracking and registry services as bench/run.py does (subprocesses, fresh SQLite
databases, loopback) and sends, through the public modelreg client, filters a caller could send
to make a server parse for a long time: 1 MB filters (many clauses, or one huge quoted string)
to search_registered_models and search_runs, and a 12,000-digit number in a metric filter (alone,
and followed by a letter). For each it prints the answer (the error reason, or how many results)
and the time to it, and the slowest get_experiment another thread saw meanwhile: parsing holds
the GIL, so a slow parse stalls every other call of that server.

To measure another checkout (the code before a change), put it first on the path; the servers
are started with the same interpreter and environment:
    PYTHONPATH=/path/to/other/checkout .venv/bin/python bench/filter_parse.py
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from run import services, start_modelreg

import modelreg
from modelreg.exceptions import ModelregError

MEGABYTE = 1_000_000


@dataclass
class Case:
    name: str
    service: str  # which server answers: its other calls are probed meanwhile
    call: Callable[[], object]


@dataclass
class Result:
    case: str
    answer: str
    seconds_min: float
    seconds_median: float
    stalled_other_calls_max_s: float  # slowest concurrent get_experiment / get_registered_model


def answer_of(call: Callable[[], object]) -> str:
    try:
        found = call()
    except ModelregError as error:
        return f"{error.code} {error.reason}"
    return f"OK, {len(list(found))} results"  # type: ignore[call-overload]  # a PagedList


def measure(case: Case, probe: Callable[[], object], repeat: int) -> Result:
    """Runs the case ``repeat`` times while another thread probes the same server."""
    stop = threading.Event()
    worst = [0.0]

    def probing() -> None:
        while not stop.is_set():
            started = time.perf_counter()
            probe()
            worst[0] = max(worst[0], time.perf_counter() - started)
            time.sleep(0.005)

    times: list[float] = []
    answer = ""
    prober = threading.Thread(target=probing, daemon=True)
    prober.start()
    try:
        for _ in range(repeat):
            started = time.perf_counter()
            answer = answer_of(case.call)
            times.append(time.perf_counter() - started)
            if times[-1] > 5:  # the old code: a couple of samples say enough
                break
    finally:
        stop.set()
        prober.join()
    return Result(case.name, answer, min(times), statistics.median(times), worst[0])


def cases(client: modelreg.Client) -> list[Case]:
    clauses_mb = ("name = 'x' AND " * (MEGABYTE // 15 + 1))[:MEGABYTE]
    string_mb = "name = '" + "x" * (MEGABYTE - 9) + "'"
    run_clauses_mb = ("params.p = 'x' AND " * (MEGABYTE // 19 + 1))[:MEGABYTE]
    run_string_mb = "params.p = '" + "x" * (MEGABYTE - 13) + "'"
    digits = "1" * 12_000
    return [
        Case("models: small valid filter", "registry", lambda: client.search_registered_models("name = 'x'")),
        Case("models: 1 MB of clauses", "registry", lambda: client.search_registered_models(clauses_mb)),
        Case("models: 1 MB quoted string", "registry", lambda: client.search_registered_models(string_mb)),
        Case("runs: small valid filter", "tracking", lambda: client.search_runs(["0"], "metrics.m < 1")),
        Case("runs: 1 MB of clauses", "tracking", lambda: client.search_runs(["0"], run_clauses_mb)),
        Case("runs: 1 MB quoted string", "tracking", lambda: client.search_runs(["0"], run_string_mb)),
        Case(
            "runs: metric < 12,000 digits",
            "tracking",
            lambda: client.search_runs(["0"], f"metrics.m < {digits}"),
        ),
        Case(
            "runs: metric < 12,000 digits + 'x'",
            "tracking",
            lambda: client.search_runs(["0"], f"metrics.m < {digits}x"),
        ),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="calls per case (default 5)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    os.environ.setdefault("MODELREG_TIMEOUT", "300")  # the old code takes seconds on some cases
    with tempfile.TemporaryDirectory(prefix="filter-bench-") as tmp, services() as started:
        running = start_modelreg(started, Path(tmp))
        with modelreg.Client(running.tracking_target, running.registry_target) as client:
            client.create_registered_model("probe")
            probes = {
                "tracking": lambda: client.get_experiment("0"),
                "registry": lambda: client.get_registered_model("probe"),
            }
            results = []
            for case in cases(client):
                result = measure(case, probes[case.service], args.repeat)
                results.append(result)
                print(
                    f"{result.case:38s} {result.answer:34s} min {result.seconds_min * 1000:9.1f} ms  "
                    f"median {result.seconds_median * 1000:9.1f} ms  "
                    f"other calls stalled up to {result.stalled_other_calls_max_s * 1000:8.1f} ms",
                    flush=True,
                )
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
