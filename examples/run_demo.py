"""``make demo``: both services on the embedded defaults in a scratch directory, the house-prices
walkthrough against them, then what the registry recorded, as the CLI shows it.

Exits non-zero when any step fails; the services' logs are printed then.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from modelreg_server.launcher import LaunchConfig, LaunchError, Services, free_port

EXAMPLE = Path(__file__).with_name("house_prices.py")


def banner(text: str) -> None:
    print(f"\n=== {text} ===", flush=True)


def run(shown: str, command: list[str], env: dict[str, str]) -> None:
    print(f"$ {shown}", flush=True)
    subprocess.run(command, env=env, check=True)


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
                banner("stopping the services")
        except (LaunchError, subprocess.CalledProcessError) as exc:
            print(f"demo failed: {exc}", file=sys.stderr)
            for log in sorted(config.log_dir.glob("*.log")) if config.log_dir else []:
                print(f"--- {log.name} (last lines) ---", file=sys.stderr)
                print("\n".join(log.read_text(errors="replace").splitlines()[-40:]), file=sys.stderr)
            return 1
        print("done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
