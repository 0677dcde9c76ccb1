"""Reading docker-compose.yml the way `docker compose` does, for the checks and the stack test."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
_VARIABLE = re.compile(r"\$\{(?P<name>[A-Z0-9_]+)(?::-(?P<default>[^}]*))?\}")


def interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's ${NAME:-default} substitution ($$ stays a literal $ for the container shell)."""
    return _VARIABLE.sub(lambda m: env.get(m["name"]) or (m["default"] or ""), text)


def load_compose(env: dict[str, str] | None = None) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(interpolate(COMPOSE_FILE.read_text(), env or {}))
    return loaded


def service_environment(compose: dict[str, Any], service: str) -> dict[str, str]:
    environment = compose["services"][service].get("environment") or {}
    return {str(key): str(value) for key, value in environment.items()}
