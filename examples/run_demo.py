"""``make demo``: both services on the embedded defaults in a scratch directory, the house-prices
walkthrough against them, then what the registry recorded, as the CLI shows it; last, ``modelreg
serve`` serving ``models:/HousePricePredictor@champion`` over HTTP while the alias moves from
version 1 to version 2, each answer naming the version that gave it.

Exits non-zero when any step fails; the services' logs (and the model server's) are printed then.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from modelreg_server.launcher import LaunchConfig, LaunchError, Services, free_port

EXAMPLE = Path(__file__).with_name("house_prices.py")
MODEL = "HousePricePredictor"
# How long the model server may take to load its first version, and then to follow the alias.
SERVE_START_SECONDS = 120.0
SERVE_SWAP_SECONDS = 60.0
VERSION_HEADER = "x-modelreg-model-version"
# Three houses in the walkthrough's columns, as `mlflow models serve` takes them.
HOUSES = {
    "dataframe_split": {
        "columns": ["square_feet", "bedrooms", "age_years"],
        "data": [[1_450.0, 3, 12.5], [2_300.0, 4, 3.0], [880.0, 1, 41.0]],
    }
}


class DemoError(Exception):
    """A step of the demo did not do what it should; the message says which."""


def banner(text: str) -> None:
    print(f"\n=== {text} ===", flush=True)


def run(shown: str, command: list[str], env: dict[str, str]) -> None:
    print(f"$ {shown}", flush=True)
    subprocess.run(command, env=env, check=True)


def invoke(url: str) -> tuple[str, list[float]]:
    """POSTs HOUSES to the model server: (the version that answered, its predictions)."""
    request = urllib.request.Request(
        f"{url}/invocations",
        data=json.dumps(HOUSES).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.headers[VERSION_HEADER], json.loads(response.read())["predictions"]


def show(url: str, version: str, predictions: list[float]) -> None:
    prices = ", ".join(f"{price:,.0f}" for price in predictions)
    print(f"POST {url}/invocations -> {VERSION_HEADER}: {version}; predicted prices {prices}")


def wait_until_serving(server: subprocess.Popen[bytes], url: str) -> None:
    """Until GET /ping answers 200; DemoError when the server exits or the time is up."""
    deadline = time.monotonic() + SERVE_START_SECONDS
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise DemoError(f"modelreg serve exited with status {server.returncode} before serving")
        try:
            with urllib.request.urlopen(f"{url}/ping", timeout=5) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError):
            pass  # not listening yet, or 503 until its first version is loaded
        time.sleep(0.25)
    raise DemoError(f"modelreg serve did not answer {url}/ping within {SERVE_START_SECONDS:.0f} s")


def serve_while_the_alias_moves(cli: list[str], env: dict[str, str], log_dir: Path) -> None:
    """@champion on version 1, `modelreg serve` following it, then @champion moved to version 2:
    the server swaps versions without a restart, and each answer names the version that gave it."""
    banner(f"modelreg alias set {MODEL} champion 1")
    run(f"modelreg alias set {MODEL} champion 1", [*cli, "alias", "set", MODEL, "champion", "1"], env)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    uri = f"models:/{MODEL}@champion"
    banner(f"modelreg serve {uri} --port {port}")
    log_dir.mkdir(parents=True, exist_ok=True)
    with (log_dir / "serve.log").open("wb") as log:
        server = subprocess.Popen(
            [*cli, "serve", uri, "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_until_serving(server, url)
            version, predictions = invoke(url)
            show(url, version, predictions)
            if version != "1":
                raise DemoError(f"{uri} should be served by version 1, {version} answered")
            banner(f"modelreg alias set {MODEL} champion 2")
            run(f"modelreg alias set {MODEL} champion 2", [*cli, "alias", "set", MODEL, "champion", "2"], env)
            deadline = time.monotonic() + SERVE_SWAP_SECONDS
            while version != "2":
                if time.monotonic() > deadline:
                    raise DemoError(
                        f"still served by version {version} {SERVE_SWAP_SECONDS:.0f} s after the move"
                    )
                time.sleep(0.25)
                version, predictions = invoke(url)
            show(url, version, predictions)
        finally:
            server.terminate()
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
    print("stopped the model server")


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="modelreg-demo-") as tmp:
        scratch = Path(tmp)
        # The demo owns its services: settings from the caller's environment must not leak in.
        clean_env = {k: v for k, v in os.environ.items() if not k.startswith("MODELREG_")}
        config = LaunchConfig(
            data_dir=scratch / "data",
            tracking_port=free_port(),
            registry_port=free_port(),
            log_dir=scratch / "logs",
            base_env=clean_env,
        )
        env = {
            **clean_env,
            "MODELREG_TRACKING_URI": config.tracking_target,
            "MODELREG_REGISTRY_URI": config.registry_target,
            "MODELREG_CACHE_DIR": str(scratch / "cache"),
        }
        cli = [sys.executable, "-m", "modelreg.cli"]
        banner(f"starting the tracking and registry services (SQLite and files in {config.data_dir})")
        try:
            with Services(config):
                print(f"tracking on {config.tracking_target}, registry on {config.registry_target}")
                banner("examples/house_prices.py")
                run("python examples/house_prices.py", [sys.executable, str(EXAMPLE)], env)
                banner("modelreg versions list HousePricePredictor")
                run(
                    "modelreg versions list HousePricePredictor",
                    [*cli, "versions", "list", "HousePricePredictor"],
                    env,
                )
                banner("modelreg history HousePricePredictor")
                run("modelreg history HousePricePredictor", [*cli, "history", "HousePricePredictor"], env)
                assert config.log_dir is not None
                serve_while_the_alias_moves(cli, env, config.log_dir)
                banner("stopping the services")
        except (LaunchError, subprocess.CalledProcessError, DemoError, OSError) as exc:
            print(f"demo failed: {exc}", file=sys.stderr)
            for log in sorted(config.log_dir.glob("*.log")) if config.log_dir else []:
                print(f"--- {log.name} (last lines) ---", file=sys.stderr)
                print("\n".join(log.read_text(errors="replace").splitlines()[-40:]), file=sys.stderr)
            return 1
        print("done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
