"""The access-control commands without a server: durations, exclusive flags, what the handlers send
to the client and how they print it, and the one-line refusals."""

from __future__ import annotations

import argparse
import json
from typing import Any

import pytest

from modelreg import cli, cli_access, exceptions
from modelreg import entities as e


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90), ("15m", 900), ("12h", 43200), ("30d", 2592000), ("1y", 31536000), ("2y", 63072000)],
)
def test_durations(text: str, seconds: int) -> None:
    assert cli_access.parse_duration(text) == seconds


@pytest.mark.parametrize(
    "text", ["", "30", "d", "0d", "1.5h", "-1d", "30 d", " 30d", "30D", "1M", "1w", "30dd"]
)
def test_bad_durations_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="is not a duration"):
        cli_access.parse_duration(text)


class _Unreachable:
    """Stands in for AccessClient where a command must not get as far as calling the service."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        raise AssertionError("the command called the service")


@pytest.mark.parametrize("duration", ["5x", "30", "0d"])
def test_a_bad_expiry_exits_2_with_one_line_naming_the_flag(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, duration: str
) -> None:
    monkeypatch.setattr(cli_access, "AccessClient", _Unreachable)
    code, out, err = run(capsys, "tokens", "create", "--user", "ci", "--expires-in", duration)
    assert (code, out) == (2, "")
    assert err.startswith(f"error: INVALID_DURATION: --expires-in: '{duration}' is not a duration")
    assert err.count("\n") == 1


@pytest.mark.parametrize(
    "argv",
    [
        ["permissions", "set", "--experiment", "1", "--model", "m", "--user", "u", "--level", "READ"],
        ["permissions", "set", "--user", "u", "--level", "READ"],
        ["permissions", "set", "--experiment", "1", "--user", "u", "--group", "g", "--level", "READ"],
        ["permissions", "set", "--experiment", "1", "--level", "READ"],
        ["permissions", "set", "--experiment", "1", "--user", "u"],
        ["permissions", "set", "--experiment", "1", "--user", "u", "--level", "OWNER"],
        ["permissions", "list"],
        ["permissions", "list", "--experiment", "1", "--model", "m"],
        ["permissions", "delete", "--model", "m"],
        ["permissions", "delete", "--model", "m", "--user", "u", "--group", "g"],
        ["users", "update", "u", "--admin", "--no-admin"],
        ["users", "update", "u", "--disable", "--enable"],
        ["users", "create"],
        ["tokens", "revoke"],
        ["models", "protect"],
        ["access"],
    ],
)
def test_exclusive_and_required_flags_are_usage_errors(
    capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    code, out, err = run(capsys, *argv)
    assert (code, out) == (2, "")
    assert "usage:" in err


class FakeAccess:
    """Records the AccessClient calls of one command and answers them."""

    calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []
    target: str | None = None

    def __init__(self, target: str | None = None) -> None:
        FakeAccess.target = target

    def __enter__(self) -> FakeAccess:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def _record(self, name: str, *args: Any, **kwargs: Any) -> None:
        FakeAccess.calls.append((name, args, kwargs))

    def update_user(self, name: str, **kwargs: Any) -> e.User:
        self._record("update_user", name, **kwargs)
        return e.User(name, bool(kwargs["admin"]), False, bool(kwargs["disabled"]), ("ml",), 0, "root")

    def create_token(self, user: str = "", **kwargs: Any) -> e.CreatedToken:
        self._record("create_token", user, **kwargs)
        token = e.Token("0123abcd", user or "me", kwargs["description"], 1000, "root", None, None)
        return e.CreatedToken(token, "mrt_0123abcd_s3cr3t")

    def list_users(self) -> list[e.User]:
        raise exceptions.PermissionDenied(
            "listing users needs an admin",
            code="PERMISSION_DENIED",
            reason="PERMISSION_DENIED",
            metadata={"permission": "ADMIN", "resource": "access"},
        )

    def whoami(self) -> e.Identity:
        raise exceptions.Unauthenticated(
            "no authorization header", code="UNAUTHENTICATED", reason="MISSING_CREDENTIALS"
        )


@pytest.fixture
def access(monkeypatch: pytest.MonkeyPatch) -> type[FakeAccess]:
    FakeAccess.calls = []
    FakeAccess.target = None
    monkeypatch.setattr(cli_access, "AccessClient", FakeAccess)
    return FakeAccess


@pytest.mark.parametrize(
    ("flags", "sent"),
    [
        (["--admin"], {"admin": True, "disabled": None, "groups": None}),
        (["--no-admin", "--enable"], {"admin": False, "disabled": False, "groups": None}),
        (["--disable", "--groups", "a", "b"], {"admin": None, "disabled": True, "groups": ["a", "b"]}),
        (["--groups"], {"admin": None, "disabled": None, "groups": []}),
    ],
)
def test_users_update_sends_only_what_was_given(
    capsys: pytest.CaptureFixture[str], access: type[FakeAccess], flags: list[str], sent: dict[str, Any]
) -> None:
    code, out, err = run(capsys, "--registry-uri", "reg:1", "users", "update", "ann", *flags)
    assert code == 0, err
    assert access.calls == [("update_user", ("ann",), sent)]
    assert access.target == "reg:1"
    assert out.splitlines()[0].split() == ["name", "ann"]


def test_users_update_without_a_change_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], access: type[FakeAccess]
) -> None:
    code, out, err = run(capsys, "users", "update", "ann")
    assert (code, out) == (2, "")
    assert err.startswith("error: NOTHING_TO_CHANGE: ") and err.count("\n") == 1
    assert access.calls == []


def test_tokens_create_prints_the_secret_alone_or_the_whole_record(
    capsys: pytest.CaptureFixture[str], access: type[FakeAccess]
) -> None:
    code, out, _ = run(
        capsys, "tokens", "create", "--user", "ci", "--expires-in", "12h", "--description", "CI"
    )
    assert (code, out) == (0, "mrt_0123abcd_s3cr3t\n")
    assert access.calls == [("create_token", ("ci",), {"description": "CI", "expires_in_seconds": 43200})]

    code, out, _ = run(capsys, "tokens", "create", "--json")
    assert code == 0
    assert json.loads(out) == {
        "id": "0123abcd",
        "user": "me",
        "description": "",
        "created_at": 1000,
        "created_by": "root",
        "expires_at": None,
        "revoked_at": None,
        "secret": "mrt_0123abcd_s3cr3t",
    }
    assert access.calls[1] == ("create_token", ("",), {"description": "", "expires_in_seconds": 0})


def test_a_refusal_names_the_permission_it_needed(
    capsys: pytest.CaptureFixture[str], access: type[FakeAccess]
) -> None:
    code, out, err = run(capsys, "users", "list")
    assert (code, out) == (1, "")
    assert err == "error: PERMISSION_DENIED: listing users needs an admin (needs ADMIN on access)\n"


def test_a_refusal_already_naming_the_permission_is_left_as_it_is(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(args: argparse.Namespace, out: cli.Output) -> int:
        raise exceptions.PermissionDenied(
            "EDIT on experiment '3' is needed",
            reason="PERMISSION_DENIED",
            metadata={"permission": "EDIT", "resource": "experiments/3"},
        )

    monkeypatch.setattr(cli_access, "cmd_whoami", refuse)
    code, _, err = run(capsys, "whoami")
    assert (code, err) == (1, "error: PERMISSION_DENIED: EDIT on experiment '3' is needed\n")


def test_unauthenticated_adds_the_modelreg_token_hint(
    capsys: pytest.CaptureFixture[str], access: type[FakeAccess]
) -> None:
    code, out, err = run(capsys, "whoami")
    assert (code, out) == (1, "")
    assert err.startswith("error: MISSING_CREDENTIALS: no authorization header (set MODELREG_TOKEN")
    assert err.count("\n") == 1 and "Unauthenticated" not in err


class FakePermissions:
    """The grant methods of modelreg.Client, recording their calls."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []
        self.grant = e.Permission("", "ml", "EDIT", "root", 1000)
        self.event = e.PermissionEvent(1000, "root", "SET", "", "ml", "EDIT", "req-1")
        self.protection = e.ModelProtection(True, ("champion",))

    def __getattr__(self, name: str) -> Any:
        def method(*args: Any, **kwargs: Any) -> Any:
            self.calls.append((name, args, kwargs))
            if name.startswith("set_") and name.endswith("_permission"):
                return e.Permission(kwargs["user"], kwargs["group"], args[1], "root", 1000)
            if name == "list_experiment_permissions":
                return [self.grant], [self.event]
            if name == "list_registered_model_permissions":
                return [self.grant], self.protection, [self.event]
            if name == "set_registered_model_protection":
                return e.ModelProtection(kwargs["production"], tuple(kwargs["aliases"]))
            return None

        return method


@pytest.fixture
def permissions(monkeypatch: pytest.MonkeyPatch) -> FakePermissions:
    fake = FakePermissions()
    monkeypatch.setattr(cli_access, "_permissions", lambda args: fake)
    return fake


@pytest.mark.parametrize(
    ("argv", "call", "said"),
    [
        (
            ["set", "--experiment", "7", "--user", "bob", "--level", "edit"],
            ("set_experiment_permission", ("7", "EDIT"), {"user": "bob", "group": ""}),
            "user bob has EDIT on experiment 7",
        ),
        (
            ["set", "--model", "Prices", "--group", "ml", "--level", "MANAGE"],
            ("set_registered_model_permission", ("Prices", "MANAGE"), {"user": "", "group": "ml"}),
            "group ml has MANAGE on model Prices",
        ),
        (
            ["delete", "--experiment", "7", "--group", "ml"],
            ("delete_experiment_permission", ("7",), {"user": "", "group": "ml"}),
            "grant of group ml on experiment 7 deleted",
        ),
        (
            ["delete", "--model", "Prices", "--user", "bob"],
            ("delete_registered_model_permission", ("Prices",), {"user": "bob", "group": ""}),
            "grant of user bob on model Prices deleted",
        ),
    ],
)
def test_permissions_set_and_delete_call_the_client(
    capsys: pytest.CaptureFixture[str],
    permissions: FakePermissions,
    argv: list[str],
    call: tuple[str, tuple[Any, ...], dict[str, Any]],
    said: str,
) -> None:
    code, out, err = run(capsys, "permissions", *argv)
    assert code == 0, err
    assert permissions.calls == [call]
    assert out == said + "\n"


def test_permissions_list_of_an_experiment_with_and_without_history(
    capsys: pytest.CaptureFixture[str], permissions: FakePermissions
) -> None:
    code, out, _ = run(capsys, "permissions", "list", "--experiment", "7")
    assert code == 0
    assert [line.split()[:4] for line in out.splitlines()] == [
        ["USER", "GROUP", "LEVEL", "GRANTED_BY"],
        ["-", "ml", "EDIT", "root"],
    ]
    assert permissions.calls == [("list_experiment_permissions", ("7",), {})]

    code, out, _ = run(capsys, "permissions", "list", "--experiment", "7", "--history")
    assert code == 0
    history = out.split("\n\n")[1].splitlines()
    assert history[0].split() == ["TIME", "ACTOR", "ACTION", "USER", "GROUP", "LEVEL"]
    assert history[1].split()[2:] == ["root", "SET", "-", "ml", "EDIT"]

    code, out, _ = run(capsys, "permissions", "list", "--experiment", "7", "--json")
    assert json.loads(out) == {
        "permissions": [
            {"user": "", "group": "ml", "level": "EDIT", "granted_by": "root", "granted_at": 1000}
        ]
    }


def test_permissions_list_of_a_model_shows_its_protection(
    capsys: pytest.CaptureFixture[str], permissions: FakePermissions
) -> None:
    code, out, _ = run(capsys, "permissions", "list", "--model", "Prices")
    assert code == 0
    assert permissions.calls == [("list_registered_model_permissions", ("Prices",), {})]
    protection = out.split("\n\n")[1]
    assert protection.splitlines() == ["protected production  yes", "protected aliases     champion"]

    code, out, _ = run(capsys, "permissions", "list", "--model", "Prices", "--history", "--json")
    document = json.loads(out)
    assert document["protection"] == {"production": True, "aliases": ["champion"]}
    assert [v["action"] for v in document["history"]] == ["SET"]


@pytest.mark.parametrize(
    ("flags", "production", "aliases"),
    [
        ([], True, ()),
        (["--no-production"], False, ()),
        (["--alias", "champion", "--alias", "prod"], True, ("champion", "prod")),
    ],
)
def test_models_protect_replaces_the_protection(
    capsys: pytest.CaptureFixture[str],
    permissions: FakePermissions,
    flags: list[str],
    production: bool,
    aliases: tuple[str, ...],
) -> None:
    code, out, _ = run(capsys, "models", "protect", "Prices", *flags, "--json")
    assert code == 0
    assert permissions.calls == [
        ("set_registered_model_protection", ("Prices",), {"production": production, "aliases": aliases})
    ]
    assert json.loads(out) == {"name": "Prices", "production": production, "aliases": list(aliases)}
