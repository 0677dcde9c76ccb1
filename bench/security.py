"""What access control and TLS cost: `python bench/security.py [--quick]`.

modelreg only: MLflow's tracking server has no token authentication, per-resource grants or TLS
of its own to compare with, so there is no MLflow side on this axis.

Starts four pairs of modelreg services as bench/run.py does (child processes on loopback, fresh
SQLite databases, local artifacts): plain (no access control, no TLS), auth (MODELREG_AUTH=on),
tls (a local CA and server certificate from modelreg_server.tls, as `modelreg tls init` makes)
and auth+tls. With auth on, MODELREG_DEFAULT_PERMISSION=NONE, so every check is a grant lookup:
the caller is a non-admin user (made with the bootstrap admin token through AccessClient) who
created its own experiment and model and holds them by the creator's MANAGE grant; when the
client has the permission methods (modelreg.Client.set_experiment_permission), also a user
holding EDIT through a group grant. create_model_version includes the registry's check of the
run with the tracking service, which with auth on goes as the registry's service identity on
behalf of the user, and with TLS on over TLS.

All four run at once but are measured in turns: each operation's calls are split into rounds
and every round visits each setup, in a rotating order, so a drift of the machine during the run
lands on all of them alike. Prints one table of p50/p99 per call and the p50 added to plain (for
auth, also the p50 added to the same transport without auth, the target being under 0.1 ms), and
artifact upload/download throughput, and writes bench/results/security.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import common
from run import RESULTS, services, start_modelreg

import modelreg
from modelreg import Metric, Param
from modelreg.access_client import AccessClient
from modelreg_server.tls import write_local_certificates

BOOTSTRAP = "bench-bootstrap-admin-token-0123456789"
CALLS = 2_000  # per operation and setup, after the warm-up
ROUNDS = 20
WARMUP = 200
ARTIFACT_REPS = 5
AUTH_TARGET_MS = 0.1
OPS = ("get_run", "log_metric", "create_model_version")
GROUP = "bench-editors"


@dataclass(frozen=True)
class Config:
    name: str
    auth: bool
    tls: bool


CONFIGS = (
    Config("plain", False, False),
    Config("auth", True, False),
    Config("tls", False, True),
    Config("auth+tls", True, True),
)


@dataclass
class Setup:
    """One caller against one configuration, with the resources its operations use."""

    name: str
    config: Config
    client: modelreg.Client
    experiment_id: str
    model: str
    get_run_id: str = ""
    metric_run_id: str = ""
    model_run_id: str = ""
    artifact_run_id: str = ""
    samples: dict[str, list[int]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def baseline(self) -> str:
        """The setup this one adds auth to: plain for auth, tls for auth+tls."""
        return "tls" if self.config.tls else "plain"

    def prepare(self, workdir: Path) -> None:
        c = self.client
        self.get_run_id = c.create_run(self.experiment_id).info.run_id
        now = int(time.time() * 1000)
        c.log_batch(
            self.get_run_id,
            metrics=[Metric(k, v, now, 0) for k, v in common.metric_items(common.GET_RUN_METRICS)],
            params=[Param(k, v) for k, v in common.param_items(common.GET_RUN_PARAMS)],
        )
        self.metric_run_id = c.create_run(self.experiment_id).info.run_id
        self.model_run_id = c.create_run(self.experiment_id).info.run_id
        c.log_artifacts(self.model_run_id, str(common.write_model_dir(workdir)), "model")
        self.artifact_run_id = c.create_run(self.experiment_id).info.run_id

    def ops(self) -> dict[str, Callable[[int], object]]:
        c, source = self.client, f"runs:/{self.model_run_id}/model"
        return {
            "get_run": lambda i: c.get_run(self.get_run_id),
            "log_metric": lambda i: c.log_metric(self.metric_run_id, "loss", i * 0.01, step=i),
            "create_model_version": lambda i: c.create_model_version(
                self.model, source, run_id=self.model_run_id
            ),
        }


def make_setups(config: Config, targets: tuple[str, str], ca: Path, workdir: Path) -> list[Setup]:
    tracking, registry = targets
    tls = modelreg.TlsConfig(ca_file=str(ca)) if config.tls else None

    def client(token: str | None) -> modelreg.Client:
        return modelreg.Client(tracking, registry, token=token, tls=tls)

    tokens: dict[str, str | None] = {config.name: None}
    admin: modelreg.Client | None = None
    grants = hasattr(modelreg.Client, "set_experiment_permission") and hasattr(
        modelreg.Client, "set_registered_model_permission"
    )
    if config.auth:
        with AccessClient(registry, token=BOOTSTRAP, tls=tls) as access:
            access.create_user("bench-creator")
            tokens = {f"{config.name} creator": access.create_token("bench-creator").secret}
            if grants:
                access.create_user("bench-editor", groups=[GROUP])
                tokens[f"{config.name} group EDIT"] = access.create_token("bench-editor").secret
        admin = client(BOOTSTRAP)
    setups: list[Setup] = []
    for name, token in tokens.items():
        caller = client(token)
        owner = admin if name.endswith("group EDIT") and admin else caller
        experiment_id = owner.create_experiment(f"bench-{name}")
        model = owner.create_registered_model(f"bench-{name.replace(' ', '-').replace('+', '-')}").name
        if owner is not caller:
            # Untyped: these client methods land with the permission work.
            getattr(owner, "set_experiment_permission")(experiment_id, "EDIT", group=GROUP)  # noqa: B009
            getattr(owner, "set_registered_model_permission")(model, "EDIT", group=GROUP)  # noqa: B009
        setup = Setup(name, config, caller, experiment_id, model)
        setup.prepare(workdir / name.replace(" ", "-"))
        setups.append(setup)
    return setups


def rotated(setups: list[Setup], k: int) -> list[Setup]:
    k %= len(setups)
    return setups[k:] + setups[:k]


def measure_calls(setups: list[Setup], calls: int, warmup: int) -> None:
    """Per operation: the warm-up, then the calls in rounds. A setup whose warm-up fails has that
    operation recorded as an error and skipped, so the others are still measured."""
    for op in OPS:
        started = time.monotonic()
        live: list[Setup] = []
        for s in setups:
            try:
                common.timed(s.ops()[op], 0, warmup=warmup)
            except Exception as exc:  # a broken op must not hide the others' results
                s.errors[op] = f"{type(exc).__name__}: {exc}"
                common.log(f"  {op} fails for {s.name}: {s.errors[op]}")
                continue
            s.samples[op] = []
            live.append(s)
        per_round = max(1, calls // ROUNDS)
        for r in range(ROUNDS):
            for s in rotated(live, r):
                s.samples[op] += common.timed(s.ops()[op], per_round, warmup=2)
        common.log(
            f"  {op:<22} {per_round * ROUNDS} calls x {len(live)} setups ({time.monotonic() - started:.0f}s)"
        )


def measure_artifacts(setups: list[Setup], blob: Path, reps: int, workdir: Path) -> None:
    """64 MiB up and down per rep, once per transport (the first caller of each configuration)."""
    started = time.monotonic()
    firsts = [s for i, s in enumerate(setups) if all(t.config != s.config for t in setups[:i])]
    for s in firsts:
        s.samples["artifact_upload"], s.samples["artifact_download"] = [], []
        s.client.log_artifact(s.artifact_run_id, str(blob), "down")
    for r in range(-1, reps):  # round -1 warms up
        for s in rotated(firsts, r):
            target = workdir / "download" / s.config.name
            target.mkdir(parents=True, exist_ok=True)
            t0 = time.perf_counter_ns()
            s.client.log_artifact(s.artifact_run_id, str(blob), f"up{r}")
            t1 = time.perf_counter_ns()
            Path(s.client.download_artifacts(s.artifact_run_id, f"down/{blob.name}", str(target))).unlink()
            t2 = time.perf_counter_ns()
            if r >= 0:
                s.samples["artifact_upload"].append(t1 - t0)
                s.samples["artifact_download"].append(t2 - t1)
    common.log(
        f"  artifacts              {reps} x {common.ARTIFACT_MIB} MiB each way ({time.monotonic() - started:.0f}s)"
    )


# --- the report ----------------------------------------------------------------------------------


def summarize(setups: list[Setup]) -> list[dict[str, Any]]:
    by_name = {s.name: s for s in setups}
    rows: list[dict[str, Any]] = []
    for op in (*OPS, "artifact_upload", "artifact_download"):
        for s in setups:
            if op in s.errors:
                rows.append({"op": op, "setup": s.name, "n": 0, "error": s.errors[op]})
            if op not in s.samples:
                continue
            p50, p99 = common.percentile(s.samples[op], 50), common.percentile(s.samples[op], 99)
            row: dict[str, Any] = {
                "op": op,
                "setup": s.name,
                "n": len(s.samples[op]),
                "p50_ms": p50,
                "p99_ms": p99,
            }
            if op.startswith("artifact_"):
                row["mib_per_s"] = common.ARTIFACT_MIB / (p50 / 1000)
            else:
                plain = by_name["plain"].samples.get(op)
                row["delta_vs_plain_ms"] = p50 - common.percentile(plain, 50) if plain else None
                base = by_name.get(s.baseline)
                if s.config.auth and base and op in base.samples:
                    row["auth_delta_ms"] = p50 - common.percentile(base.samples[op], 50)
                    row["auth_target_met"] = row["auth_delta_ms"] < AUTH_TARGET_MS
            rows.append(row)
    return rows


def render(rows: list[dict[str, Any]]) -> str:
    def ms(value: float | None, signed: bool = False) -> str:
        return "-" if value is None else f"{value:+.3f}" if signed else f"{value:.3f}"

    calls = [r for r in rows if "mib_per_s" not in r]
    transfers = [r for r in rows if "mib_per_s" in r]
    lines = [
        f"| operation | setup | n | p50 ms | p99 ms | p50 vs plain | auth's p50 share (target < {AUTH_TARGET_MS:g} ms) |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in calls:
        if "error" in r:
            lines.append(f"| {r['op']} | {r['setup']} | 0 | ERROR | {r['error'][:60]} | - | - |")
            continue
        share = ms(r.get("auth_delta_ms"), signed=True)
        if "auth_target_met" in r:
            share += " ok" if r["auth_target_met"] else " over"
        lines.append(
            f"| {r['op']} | {r['setup']} | {r['n']} | {ms(r['p50_ms'])} | {ms(r['p99_ms'])} "
            f"| {ms(r['delta_vs_plain_ms'], signed=True)} | {share} |"
        )
    lines += [
        "",
        f"| artifact ({common.ARTIFACT_MIB} MiB) | setup | n | MiB/s (p50) | p50 s | p99 s |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for r in transfers:
        lines.append(
            f"| {r['op'].removeprefix('artifact_')} | {r['setup']} | {r['n']} | {r['mib_per_s']:,.0f} "
            f"| {r['p50_ms'] / 1000:.2f} | {r['p99_ms'] / 1000:.2f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--quick", action="store_true", help=f"1/{common.QUICK_DIVISOR} of the calls, 2 artifact reps"
    )
    args = parser.parse_args(argv)
    calls, warmup = common.scaled(CALLS, args.quick), common.scaled(WARMUP, args.quick)
    reps = 2 if args.quick else ARTIFACT_REPS
    RESULTS.mkdir(exist_ok=True)
    started = time.monotonic()
    tmp = Path(tempfile.mkdtemp(prefix="modelreg-bench-security-"))
    try:
        certs = tmp / "certs"
        write_local_certificates(certs)
        blob = tmp / "blob.bin"
        with blob.open("wb") as blob_file:
            for _ in range(common.ARTIFACT_MIB):
                blob_file.write(os.urandom(1 << 20))
        with services() as started_services:
            setups: list[Setup] = []
            for config in CONFIGS:
                home = tmp / config.name
                home.mkdir()
                env = (
                    {
                        "MODELREG_AUTH": "on",
                        "MODELREG_AUTH_DATABASE_URL": f"sqlite:///{home / 'auth.db'}",
                        "MODELREG_BOOTSTRAP_ADMIN_TOKEN": BOOTSTRAP,
                        "MODELREG_DEFAULT_PERMISSION": "NONE",
                    }
                    if config.auth
                    else {"MODELREG_AUTH": "off"}
                )
                pair = start_modelreg(started_services, home, env, certs if config.tls else None)
                targets = (pair.tracking_target, pair.registry_target)
                setups += make_setups(config, targets, certs / "ca.pem", home / "client")
            common.log(
                f"services ready, setups: {', '.join(s.name for s in setups)} ({time.monotonic() - started:.0f}s)"
            )
            measure_calls(setups, calls, warmup)
            measure_artifacts(setups, blob, reps, tmp)
            for s in setups:
                s.client.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    rows = summarize(setups)
    table = render(rows)
    elapsed = time.monotonic() - started
    print()
    print(table)
    print(f"\n{elapsed:.0f}s")
    document = {
        "meta": {
            "time": datetime.now(UTC).isoformat(timespec="seconds"),
            "quick": args.quick,
            "elapsed_s": round(elapsed),
            "calls_per_op": calls,
            "rounds": ROUNDS,
            "artifact_mib": common.ARTIFACT_MIB,
            "machine": {
                "cpus": os.cpu_count(),
                "platform": platform.platform(),
                "python": platform.python_version(),
            },
            "setups": [{"name": s.name, "auth": s.config.auth, "tls": s.config.tls} for s in setups],
        },
        "rows": rows,
        "table": table,
    }
    out = RESULTS / "security.json"
    out.write_text(json.dumps(document, indent=2) + "\n")
    print(f"wrote {out}")
    # A missed target is a measurement; only an operation that could not run fails the command.
    return 1 if any("error" in r for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
