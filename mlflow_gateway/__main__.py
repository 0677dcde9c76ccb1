"""``python -m mlflow_gateway [--host H] [--port P] [--tracking-uri T] [--registry-uri R]``: the
endpoint on its own, as ``modelreg mlflow-server`` runs it (the container image's entry point)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from mlflow_gateway.settings import GatewaySettings, add_arguments


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m mlflow_gateway",
        description="modelreg's MLflow-compatible REST endpoint, for the unmodified mlflow client",
    )
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        settings = GatewaySettings.from_env().with_args(args)
    except ValueError as exc:
        parser.error(str(exc))
    # Imported once the arguments are good: uvicorn and the app are not needed for --help.
    from mlflow_gateway.server import serve

    # On stderr, as the services log theirs: a launcher's stdout is its own report.
    serve(settings, on_listening=lambda url: print(f"mlflow endpoint listening on {url}", file=sys.stderr))
    return 0


if __name__ == "__main__":
    sys.exit(main())
