"""Reading docker-compose.yml the way `docker compose` does, for the checks and the stack test."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
_VARIABLE = re.compile(r"\$\{(?P<name>[A-Z0-9_]+)(?:(?P<kind>:-|:\?)(?P<default>[^}]*))?\}")
# What the checks and the stack test give the required variables (compose reads them from .env).
REQUIRED = {"MODELREG_BOOTSTRAP_ADMIN_TOKEN": "bootstrap-token-of-the-compose-tests"}


class MissingVariable(ValueError):
    """A ${NAME:?message} variable is unset, so `docker compose` would refuse the file."""


def interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's ${NAME:-default} and ${NAME:?error} substitution ($$ stays a literal $ for the
    container shell)."""

    def value(match: re.Match[str]) -> str:
        found = env.get(match["name"])
        if not found and match["kind"] == ":?":
            raise MissingVariable(f"{match['name']}: {match['default']}")
        return found or (match["default"] or "")

    return _VARIABLE.sub(value, text)


def load_compose(env: dict[str, str] | None = None) -> dict[str, Any]:
    """The file as compose reads it with ``env`` (default: just the required variables)."""
    loaded: dict[str, Any] = yaml.safe_load(
        interpolate(COMPOSE_FILE.read_text(), REQUIRED if env is None else env)
    )
    return loaded


def service_environment(compose: dict[str, Any], service: str) -> dict[str, str]:
    environment = compose["services"][service].get("environment") or {}
    return {str(key): str(value) for key, value in environment.items()}
