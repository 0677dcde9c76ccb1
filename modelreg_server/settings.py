"""Reading service settings from the environment, shared by both services' ``config.py``.

Every reader validates its variable and raises :class:`ConfigError` with one line that names it,
so a wrong setting stops the service at start instead of failing deep inside a request.
"""

from __future__ import annotations

from collections.abc import Mapping

import sqlalchemy as sa

from modelreg_server.db import database_url_error

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class ConfigError(ValueError):
    """A setting is invalid; the message is one line naming the variable."""


class EnvReader:
    """Typed, validated access to environment variables; blank counts as unset."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self._env = env

    def text(self, name: str, default: str) -> str:
        return self._env.get(name, "").strip() or default

    def integer(self, name: str, default: int, low: int, high: int) -> int:
        raw = self.text(name, "")
        if not raw:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise ConfigError(f"{name} must be an integer, got {raw!r}") from None
        if not low <= value <= high:
            raise ConfigError(f"{name} must be between {low} and {high}, got {value}")
        return value

    def number(self, name: str, default: float, low: float, high: float) -> float:
        raw = self.text(name, "")
        if not raw:
            return default
        try:
            value = float(raw)
        except ValueError:
            raise ConfigError(f"{name} must be a number, got {raw!r}") from None
        if not low <= value <= high:
            raise ConfigError(f"{name} must be between {low:g} and {high:g}, got {value:g}")
        return value

    def boolean(self, name: str, default: bool) -> bool:
        raw = self.text(name, "").lower()
        if not raw:
            return default
        if raw in _TRUE | _FALSE:
            return raw in _TRUE
        raise ConfigError(f"{name} must be true or false, got {raw!r}")

    def choice(self, name: str, default: str, choices: tuple[str, ...]) -> str:
        """One of ``choices``, compared without regard to case."""
        value = self.text(name, default)
        value = next((choice for choice in choices if choice.lower() == value.lower()), value)
        if value not in choices:
            raise ConfigError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
        return value

    def database_url(self, name: str, default: str) -> str:
        """A SQLAlchemy URL whose dialect and driver are installed; never echoes a password."""
        url = self.text(name, default)
        problem = database_url_error(url)
        if problem is None:
            return url
        try:
            shown = sa.make_url(url).render_as_string(hide_password=True)
        except sa.exc.ArgumentError:
            shown = url
        raise ConfigError(f"{name} {problem}: {shown!r}")

    def log_level(self, default: str = "INFO") -> str:
        return self.choice("MODELREG_LOG_LEVEL", default, LOG_LEVELS)

    def json_logs(self) -> bool:
        return self.choice("MODELREG_LOG_FORMAT", "text", ("text", "json")) == "json"
