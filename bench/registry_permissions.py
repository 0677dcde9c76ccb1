"""What per-model permissions cost: `python bench/registry_permissions.py [--n 3000]`.

p50/p99 of create_model_version (a bare source: the lineage hop is the same with or without
access control) and get_model_version, as a non-admin user holding EDIT through a grant:

- end to end: both real servers in-process on SQLite, through the client, access control off,
  on with the default READ (reads need no lookup), and on with the default NONE (every call
  looks its grant up, at most once per 0.5 s);
- in process: RegistryService on the same store without gRPC, principal None vs the grantee,
  which isolates the permission check from the transport and authentication.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from modelreg_server.access.policy import AccessPolicy, Grantee, Level, Principal
from modelreg_server.context import CallContext
from modelreg_server.db import create_db_engine, upgrade
from registry_service.domain.service import RegistryService
from registry_service.store import MIGRATIONS_DIR
from registry_service.store.sql import SqlRegistryStore
from tests.integration.access.conftest import SecuredServices, auth_settings
from tests.servers import running_services
from tests.unit.registry.registry_fakes import FakeLineage


def timed(call: Callable[[int], object], n: int) -> tuple[float, float]:
    """(p50, p99) in ms of ``n`` calls after a warm-up."""
    for i in range(min(200, n // 10)):
        call(i)
    samples = []
    for i in range(n):
        started = time.perf_counter()
        call(i)
        samples.append((time.perf_counter() - started) * 1000)
    cuts = statistics.quantiles(samples, n=100)
    return cuts[49], cuts[98]


def end_to_end(n: int, default: Level | None) -> dict[str, tuple[float, float]]:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        auth = auth_settings(root, default) if default is not None else None
        with running_services(root, auth) as services:
            secured = SecuredServices(services)
            owner = secured.user_token("owner") if auth else ""
            user = secured.user_token("bench-user") if auth else ""
            with secured.client(owner) as client:
                client.create_registered_model("Bench")
                client.create_model_version("Bench", "s3://bench/0")
                if auth:
                    client.set_registered_model_permission("Bench", "EDIT", user="bench-user")
            with secured.client(user) as client:
                return {
                    "create_model_version": timed(
                        lambda i: client.create_model_version("Bench", f"s3://b/{i}"), n
                    ),
                    "get_model_version": timed(lambda i: client.get_model_version("Bench", 1), n),
                }


def in_process(n: int, rounds: int = 5) -> dict[str, dict[str, tuple[float, float]]]:
    """Both callers on one service and store, alternating rounds (SQLite's file grows either way);
    per operation the median of the rounds' p50 and p99."""
    with tempfile.TemporaryDirectory() as tmp:
        engine = create_db_engine(f"sqlite:///{tmp}/registry.db")
        upgrade(engine, MIGRATIONS_DIR)
        service_store = SqlRegistryStore(engine)
        service = RegistryService(service_store, FakeLineage(), AccessPolicy(default_level=Level.NONE))
        owner = CallContext("owner", "r", Principal("owner"))
        service.create_registered_model(owner, "Bench")
        service.create_model_version(owner, "Bench", "s3://bench/0")
        service.set_registered_model_permission(owner, "Bench", "bench-user", "", Level.EDIT)
        callers = {
            "in-process, no principal": CallContext("bench-user", "r"),
            "in-process, grantee (EDIT grant)": CallContext("bench-user", "r", Principal("bench-user")),
        }
        samples: dict[str, dict[str, list[tuple[float, float]]]] = {label: {} for label in callers}
        # The lookup a check makes when its (grantee, model) is not cached (at most every 0.5 s).
        lookup = Grantee("bench-user", ())
        samples["store.model_access (uncached check)"] = {
            "get_model_version": [timed(lambda i: service_store.model_access("Bench", lookup), n)]
        }
        for _ in range(rounds):
            for label, ctx in callers.items():
                ops: dict[str, Callable[[int], object]] = {
                    "create_model_version": lambda i, c=ctx: service.create_model_version(
                        c, "Bench", f"s3://{i}"
                    ),
                    "get_model_version": lambda i, c=ctx: service.get_model_version(c, "Bench", 1),
                }
                for op, call in ops.items():
                    samples[label].setdefault(op, []).append(timed(call, n))
        engine.dispose()
    return {
        label: {
            op: (statistics.median(p[0] for p in runs), statistics.median(p[1] for p in runs))
            for op, runs in ops_samples.items()
        }
        for label, ops_samples in samples.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=3000)
    n = parser.parse_args().n
    rows = {
        "e2e auth off": end_to_end(n, None),
        "e2e auth on, default READ": end_to_end(n, Level.READ),
        "e2e auth on, default NONE": end_to_end(n, Level.NONE),
        **in_process(n),
    }
    print(f"{'':34} {'create p50':>10} {'create p99':>10} {'get p50':>8} {'get p99':>8}   (ms, n={n})")
    for label, result in rows.items():
        (cp50, cp99), (gp50, gp99) = (
            result.get("create_model_version", (0.0, 0.0)),
            result["get_model_version"],
        )
        print(f"{label:34} {cp50:10.3f} {cp99:10.3f} {gp50:8.3f} {gp99:8.3f}")


if __name__ == "__main__":
    main()
