"""`modelreg server` / `modelreg db upgrade` come from the server distribution's entry points; with
only the client installed they exit 2 with one line naming what to install."""

from __future__ import annotations

import pytest

from modelreg import cli


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def client_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """As if modelreg-server were not installed: no `modelreg.commands` entry points."""
    monkeypatch.setattr(cli, "command_entry_points", dict)


def test_the_server_distribution_provides_the_server_commands() -> None:
    points = cli.command_entry_points()
    assert {name: points[name].value for name in ("server", "db")} == {
        "server": "modelreg_server.commands:add_server_command",
        "db": "modelreg_server.commands:add_db_command",
    }
    assert points["server"].dist is not None and points["server"].dist.name == "modelreg-server"


@pytest.mark.usefixtures("client_only")
@pytest.mark.parametrize(
    ("argv", "command"),
    [
        (["server"], "modelreg server"),
        (["server", "--data-dir", "d", "--tracking-port", "1"], "modelreg server"),
        (["--json", "server", "--verbose"], "modelreg server"),
        (["db", "upgrade"], "modelreg db upgrade"),
        (["db", "upgrade", "all", "--data-dir", "d"], "modelreg db upgrade"),
        (["db"], "modelreg db"),
    ],
)
def test_without_the_server_its_commands_exit_2_naming_the_package(
    capsys: pytest.CaptureFixture[str], argv: list[str], command: str
) -> None:
    code, out, err = run(capsys, *argv)
    assert (code, out) == (2, "")
    assert err == (
        f"error: SERVER_NOT_INSTALLED: '{command}' needs the server distribution: pip install modelreg-server\n"
    )


@pytest.mark.usefixtures("client_only")
def test_without_the_server_the_other_commands_parse_as_before(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--help")
    assert code == 0
    assert "needs modelreg-server" in out and "download" in out
    for argv in (["nonsense"], ["models", "list", "--bogus"], ["versions", "transition", "x"]):
        code, _, err = run(capsys, *argv)
        assert code == 2 and "usage:" in err
