from __future__ import annotations

import pytest

from modelreg_server.settings import ConfigError, EnvReader


def test_blank_counts_as_unset() -> None:
    read = EnvReader({"A": "  "})
    assert read.text("A", "default") == "default"
    assert read.integer("A", 7, 0, 10) == 7


@pytest.mark.parametrize(
    ("env", "call"),
    [
        ({"P": "80x"}, lambda r: r.integer("P", 1, 0, 65535)),
        ({"P": "70000"}, lambda r: r.integer("P", 1, 0, 65535)),
        ({"T": "-1"}, lambda r: r.number("T", 1.0, 0.1, 600)),
        ({"B": "maybe"}, lambda r: r.boolean("B", True)),
        ({"MODELREG_LOG_FORMAT": "xml"}, lambda r: r.json_logs()),
        ({"U": "nosuchdialect://x"}, lambda r: r.database_url("U", "sqlite://")),
    ],
)
def test_bad_values_name_the_variable(env: dict[str, str], call: object) -> None:
    name = next(iter(env))
    with pytest.raises(ConfigError, match=name):
        call(EnvReader(env))  # type: ignore[operator]


def test_choices_ignore_case() -> None:
    read = EnvReader({"MODELREG_LOG_LEVEL": "debug", "MODELREG_LOG_FORMAT": "JSON", "B": "Yes"})
    assert read.log_level() == "DEBUG"
    assert read.json_logs() is True
    assert read.boolean("B", False) is True


def test_database_url_errors_hide_the_password() -> None:
    with pytest.raises(ConfigError) as info:
        EnvReader({"U": "nosuchdialect://user:s3cret@host/db"}).database_url("U", "sqlite://")
    assert "s3cret" not in str(info.value)
