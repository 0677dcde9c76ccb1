"""GetRun while silent uploads or stalled downloads hang: `python bench/silent_streams.py [--quick]`.

modelreg only. Starts the two services as bench/run.py does (child processes on loopback, fresh
SQLite databases, local artifacts, the default 16 workers) with the stream idle limit raised
above the measurement's length, so the load lasts throughout: what is measured is the bound on
concurrent streams, not the idle cut. Measures GetRun of a run with 100 params and 100
metrics from one client, first alone, then while 64 uploads on another channel have sent their
metadata and nothing else, then while 64 downloads of a 64 MiB artifact on another channel (small
flow-control windows) have read their first message and nothing else, so the service's sends
block. The service admits MODELREG_MAX_STREAMS streams of either kind, 12 by default, and refuses
the rest with RESOURCE_EXHAUSTED TOO_MANY_STREAMS. Prints p50/p99/max per setup, the target being
a p99 under 50 ms with each load, and writes bench/results/silent_streams.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor, wait
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import common
import grpc
from run import RESULTS, services, start_modelreg

import modelreg
from modelreg import Metric, Param
from modelreg.tracking.v1 import tracking_pb2 as pb
from modelreg.tracking.v1.tracking_pb2_grpc import TrackingServiceStub

CALLS = 2_000
WARMUP = 200
SILENT = 64
P99_TARGET_MS = 50.0
# Longer than the measurement, so no silent stream is cut while GetRun is timed.
IDLE_SECONDS = 600
BIG_MIB = 64  # the stalled downloads' file, of 1 MiB chunks: far more than windows and buffers hold
# No BDP probing and a small look-ahead: a client that stops reading stops the service's send.
SMALL_WINDOWS = [("grpc.http2.bdp_probe", 0), ("grpc.http2.lookahead_bytes", 64 * 1024)]


def silent_uploads(target: str, run_id: str, release: threading.Event) -> list[grpc.Future]:
    """SILENT uploads on a channel of their own, each sending its metadata and then nothing
    until ``release`` is set."""
    stub = TrackingServiceStub(grpc.insecure_channel(target))

    def requests(i: int) -> Iterator[pb.UploadArtifactRequest]:
        metadata = pb.UploadArtifactMetadata(run_id=run_id, path=f"silent/{i}.bin")
        yield pb.UploadArtifactRequest(metadata=metadata)
        release.wait()

    return [stub.UploadArtifact.future(requests(i)) for i in range(SILENT)]


def stalled_downloads(target: str, run_id: str, path: str) -> tuple[int, grpc.Channel]:
    """SILENT downloads of ``path`` on a channel of their own, each reading its first message and
    then nothing until the channel closes; the number refused with RESOURCE_EXHAUSTED."""
    channel = grpc.insecure_channel(target, options=SMALL_WINDOWS)
    stub = TrackingServiceStub(channel)
    calls = [
        stub.DownloadArtifact(pb.DownloadArtifactRequest(run_id=run_id, path=path)) for _ in range(SILENT)
    ]

    def first(call: Iterator[pb.DownloadArtifactResponse]) -> bool:
        try:
            next(call)
            return False
        except grpc.RpcError as exc:
            return exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED  # type: ignore[attr-defined]

    pool = ThreadPoolExecutor(SILENT)
    futures = [pool.submit(first, call) for call in calls]
    wait(futures, timeout=10)
    pool.shutdown(wait=False)
    return sum(1 for f in futures if f.done() and f.result()), channel


def refused_count(futures: list[grpc.Future]) -> int:
    return sum(
        1
        for f in futures
        if f.done() and f.exception() is not None and f.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    )


def row(setup: str, samples: list[int], **extra: Any) -> dict[str, Any]:
    return {
        "setup": setup,
        "n": len(samples),
        "p50_ms": common.percentile(samples, 50),
        "p99_ms": common.percentile(samples, 99),
        "max_ms": max(samples) / 1e6,
        **extra,
    }


def render(rows: list[dict[str, Any]]) -> str:
    lines = [
        f"| GetRun | n | p50 ms | p99 ms (target < {P99_TARGET_MS:g} with load) | max ms | hanging streams admitted / refused |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        streams = f"{r['admitted']} / {r['refused']}" if "refused" in r else "-"
        lines.append(
            f"| {r['setup']} | {r['n']} | {r['p50_ms']:.3f} | {r['p99_ms']:.3f} | {r['max_ms']:.3f} | {streams} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help=f"1/{common.QUICK_DIVISOR} of the calls")
    args = parser.parse_args(argv)
    calls, warmup = common.scaled(CALLS, args.quick), common.scaled(WARMUP, args.quick)
    RESULTS.mkdir(exist_ok=True)
    started = time.monotonic()
    tmp = Path(tempfile.mkdtemp(prefix="modelreg-bench-streams-"))
    rows: list[dict[str, Any]] = []
    release = threading.Event()
    try:
        with services() as started_services:
            pair = start_modelreg(started_services, tmp, {"MODELREG_STREAM_IDLE_SECONDS": str(IDLE_SECONDS)})
            client = modelreg.Client(pair.tracking_target, pair.registry_target)
            run_id = client.create_run(client.create_experiment("bench-streams")).info.run_id
            now = int(time.time() * 1000)
            client.log_batch(
                run_id,
                metrics=[Metric(k, v, now, 0) for k, v in common.metric_items(common.GET_RUN_METRICS)],
                params=[Param(k, v) for k, v in common.param_items(common.GET_RUN_PARAMS)],
            )

            def get_run(_: int) -> object:
                return client.get_run(run_id)

            rows.append(row("alone", common.timed(get_run, calls, warmup=warmup)))
            futures = silent_uploads(pair.tracking_target, run_id, release)
            time.sleep(1)  # every stream reaches the service, admitted or refused
            samples = common.timed(get_run, calls, warmup=0)
            refused = refused_count(futures)
            rows.append(row(f"{SILENT} silent uploads", samples, admitted=SILENT - refused, refused=refused))
            common.log(f"  GetRun {calls} calls alone and under load ({time.monotonic() - started:.0f}s)")
            release.set()
            for future in futures:
                future.cancel()
            time.sleep(1)  # the uploads' slots come back
            big = tmp / "big.bin"
            big.write_bytes(os.urandom(1024 * 1024) * BIG_MIB)
            client.log_artifact(run_id, big, "big")
            refused, channel = stalled_downloads(pair.tracking_target, run_id, "big/big.bin")
            samples = common.timed(get_run, calls, warmup=0)
            rows.append(
                row(f"{SILENT} stalled downloads", samples, admitted=SILENT - refused, refused=refused)
            )
            common.log(f"  GetRun {calls} calls under stalled downloads ({time.monotonic() - started:.0f}s)")
            channel.close()
            client.close()
    finally:
        release.set()
        shutil.rmtree(tmp, ignore_errors=True)
    table = render(rows)
    elapsed = time.monotonic() - started
    print()
    print(table)
    print()
    for loaded in rows[1:]:
        met = "met" if loaded["p99_ms"] < P99_TARGET_MS else "missed"
        print(f"p99 under {loaded['setup']} {loaded['p99_ms']:.1f} ms: target {met}")
    print(f"{elapsed:.0f}s")
    document = {
        "meta": {
            "time": datetime.now(UTC).isoformat(timespec="seconds"),
            "quick": args.quick,
            "elapsed_s": round(elapsed),
            "calls": calls,
            "silent_streams": SILENT,
            "machine": {
                "cpus": os.cpu_count(),
                "platform": platform.platform(),
                "python": platform.python_version(),
            },
        },
        "rows": rows,
        "p99_target_ms": P99_TARGET_MS,
        "table": table,
    }
    out = RESULTS / "silent_streams.json"
    out.write_text(json.dumps(document, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
