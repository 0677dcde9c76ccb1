"""The access-control commands of `modelreg` against both real services with access control on: the
bootstrap admin makes a user and a token, the token works in the next command, and refusals are one
line naming what was missing."""

from __future__ import annotations

import json
import re
import time

import pytest

import modelreg
from modelreg.cli import main
from tests.integration.access.conftest import BOOTSTRAP, SecuredServices

SECRET = re.compile(r"mrt_\S+")


def run(capsys: pytest.CaptureFixture[str], secured: SecuredServices, *argv: str) -> tuple[int, str, str]:
    services = secured.services
    code = main(["--tracking-uri", services.tracking, "--registry-uri", services.registry, *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def run_json(capsys: pytest.CaptureFixture[str], secured: SecuredServices, *argv: str) -> object:
    code, out, err = run(capsys, secured, *argv, "--json")
    assert code == 0, err
    return json.loads(out)


@pytest.fixture
def as_admin(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    monkeypatch.setenv("MODELREG_TOKEN", BOOTSTRAP)
    return monkeypatch


def test_the_admin_makes_a_user_whose_token_works_in_the_next_command(
    capsys: pytest.CaptureFixture[str], secured: SecuredServices, as_admin: pytest.MonkeyPatch
) -> None:
    code, out, err = run(
        capsys, secured, "users", "create", "ci", "--service", "--group", "ml", "--group", "ops"
    )
    assert code == 0, err
    assert ["name", "ci"] in [line.split() for line in out.splitlines()]

    before = time.time()
    code, out, err = run(capsys, secured, "tokens", "create", "--user", "ci", "--expires-in", "30d")
    assert (code, err) == (0, "")
    assert SECRET.fullmatch(out.rstrip("\n")) and out.count("\n") == 1  # the secret alone

    as_admin.setenv("MODELREG_TOKEN", out.strip())
    me = run_json(capsys, secured, "whoami")
    assert me == {
        "name": "ci",
        "groups": ["ml", "ops"],
        "admin": False,
        "service": True,
        "authenticated_by": "token",
    }
    code, out, _ = run(capsys, secured, "whoami")
    assert code == 0
    assert [line.split() for line in out.splitlines()] == [
        ["name", "ci"],
        ["groups", "ml,ops"],
        ["admin", "False"],
        ["service", "True"],
        ["authenticated_by", "token"],
    ]

    # ci manages its own tokens (none outliving the one it uses): --json gives the whole record.
    record = run_json(capsys, secured, "tokens", "create", "--expires-in", "29d", "--description", "laptop")
    assert isinstance(record, dict)
    assert (record["user"], record["description"], record["revoked_at"]) == ("ci", "laptop", None)
    assert SECRET.fullmatch(record["secret"]) and record["id"] in record["secret"]
    assert before + 29 * 86400 - 5 < record["expires_at"] / 1000 < time.time() + 29 * 86400 + 5
    listed = run_json(capsys, secured, "tokens", "list")
    assert isinstance(listed, list)
    assert {t["user"] for t in listed} == {"ci"} and record["id"] in {t["id"] for t in listed}
    assert all("secret" not in t for t in listed)


def test_a_revoked_token_is_refused_with_the_token_hint(
    capsys: pytest.CaptureFixture[str], secured: SecuredServices, as_admin: pytest.MonkeyPatch
) -> None:
    secret = secured.user_token("rob")
    token_id = secret.split("_")[1]
    code, out, _ = run(capsys, secured, "tokens", "list", "--user", "rob")
    assert code == 0
    header, *rows = out.splitlines()
    assert header.split()[:2] == ["ID", "USER"]
    assert [row.split()[:2] for row in rows] == [[token_id, "rob"]]

    code, out, err = run(capsys, secured, "tokens", "revoke", token_id)
    assert (code, out, err) == (0, f"token {token_id} of rob revoked\n", "")
    assert run(capsys, secured, "tokens", "list", "--user", "rob")[1].count("\n") == 1  # the header only
    revoked = run_json(capsys, secured, "tokens", "list", "--user", "rob", "--all")
    assert isinstance(revoked, list) and [t["id"] for t in revoked] == [token_id]
    assert revoked[0]["revoked_at"] is not None

    time.sleep(1.0)  # every replica refuses a revoked token within a second
    as_admin.setenv("MODELREG_TOKEN", secret)
    code, out, err = run(capsys, secured, "whoami")
    assert (code, out) == (1, "")
    assert err.startswith("error: TOKEN_REVOKED: ") and "set MODELREG_TOKEN" in err
    assert err.count("\n") == 1


def test_without_a_token_the_error_says_to_set_one(
    capsys: pytest.CaptureFixture[str], secured: SecuredServices, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MODELREG_TOKEN", raising=False)
    for argv in (["whoami"], ["experiments", "list"], ["models", "list"]):
        code, out, err = run(capsys, secured, *argv)
        assert (code, out) == (1, "")
        assert err.startswith("error: MISSING_CREDENTIALS: ") and "set MODELREG_TOKEN" in err
        assert err.count("\n") == 1


def test_users_list_as_a_non_admin_is_refused_naming_the_permission(
    capsys: pytest.CaptureFixture[str], secured: SecuredServices, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODELREG_TOKEN", secured.user_token("nora"))
    for argv in (["users", "list"], ["users", "create", "nora-friend"], ["access", "events"]):
        code, out, err = run(capsys, secured, *argv)
        assert (code, out) == (1, "")
        assert err.startswith("error: PERMISSION_DENIED: ") and "ADMIN" in err
        assert err.count("\n") == 1 and "PermissionDenied" not in err


def test_users_update_and_list(
    capsys: pytest.CaptureFixture[str], secured: SecuredServices, as_admin: pytest.MonkeyPatch
) -> None:
    secret = secured.user_token("ursula", groups=("ml",))
    updated = run_json(capsys, secured, "users", "update", "ursula", "--admin", "--groups", "a", "b")
    assert isinstance(updated, dict)
    assert (updated["admin"], updated["disabled"], updated["groups"]) == (True, False, ["a", "b"])
    run_json(capsys, secured, "users", "update", "ursula", "--no-admin", "--disable", "--groups")
    users = run_json(capsys, secured, "users", "list")
    assert isinstance(users, list)
    ursula = next(u for u in users if u["name"] == "ursula")
    assert (ursula["admin"], ursula["disabled"], ursula["groups"]) == (False, True, [])

    code, out, _ = run(capsys, secured, "users", "list")
    assert code == 0
    header, *rows = (line.split() for line in out.splitlines())
    assert header == ["NAME", "ADMIN", "SERVICE", "DISABLED", "GROUPS", "CREATED", "CREATED_BY"]
    assert ["ursula", "False", "False", "True", "-"] in [row[:5] for row in rows]

    time.sleep(1.0)
    as_admin.setenv("MODELREG_TOKEN", secret)
    code, _, err = run(capsys, secured, "whoami")
    assert code == 1 and err.startswith("error: USER_DISABLED: ")

    as_admin.setenv("MODELREG_TOKEN", BOOTSTRAP)
    code, _, err = run(capsys, secured, "users", "update", "nobody-by-that-name", "--enable")
    assert code == 1 and err.startswith("error: USER_NOT_FOUND: ")
    code, _, err = run(capsys, secured, "users", "create", "ursula")
    assert code == 1 and err.startswith("error: USER_ALREADY_EXISTS: ")


def test_an_expiry_beyond_what_the_service_allows_is_refused(
    capsys: pytest.CaptureFixture[str], secured: SecuredServices, as_admin: pytest.MonkeyPatch
) -> None:
    code, out, err = run(capsys, secured, "tokens", "create", "--expires-in", "11y")
    assert (code, out) == (1, "")
    assert err.startswith("error: INVALID_EXPIRY: ")


def test_the_access_audit_names_who_did_what(
    capsys: pytest.CaptureFixture[str], secured: SecuredServices, as_admin: pytest.MonkeyPatch
) -> None:
    assert run(capsys, secured, "users", "create", "audrey")[0] == 0
    secret = run(capsys, secured, "tokens", "create", "--user", "audrey")[1].strip()
    token_id = secret.split("_")[1]
    assert run(capsys, secured, "tokens", "revoke", token_id)[0] == 0

    events = run_json(capsys, secured, "access", "events")
    assert isinstance(events, list)
    mine = [(v["actor"], v["action"], v["target"]) for v in events if v["target"] in ("audrey", token_id)]
    assert mine == [  # newest first
        ("bootstrap-admin", "TOKEN_REVOKED", token_id),
        ("bootstrap-admin", "TOKEN_CREATED", token_id),
        ("bootstrap-admin", "USER_CREATED", "audrey"),
    ]
    assert all(secret not in v["detail"] for v in events)

    code, out, _ = run(capsys, secured, "access", "events", "--max-results", "1")
    assert code == 0
    header, *rows = out.splitlines()
    assert header.split() == ["TIME", "ACTOR", "ACTION", "TARGET", "DETAIL"]
    assert len(rows) == 1 and rows[0].split()[2:5] == ["bootstrap-admin", "TOKEN_REVOKED", token_id]


permissions_landed = pytest.mark.skipif(
    not hasattr(modelreg.Client, "set_experiment_permission"), reason="permissions land separately"
)


@permissions_landed
def test_experiment_grants_set_list_and_delete(
    capsys: pytest.CaptureFixture[str], secured: SecuredServices, as_admin: pytest.MonkeyPatch
) -> None:
    secured.user_token("gina")
    with secured.client(BOOTSTRAP) as admin:
        experiment_id = admin.create_experiment("granted-experiment")
    code, out, err = run(
        capsys,
        secured,
        "permissions",
        "set",
        "--experiment",
        experiment_id,
        "--user",
        "gina",
        "--level",
        "edit",
    )
    assert (code, err) == (0, "")
    assert out == f"user gina has EDIT on experiment {experiment_id}\n"
    grants = run_json(capsys, secured, "permissions", "list", "--experiment", experiment_id)
    assert isinstance(grants, dict)
    assert [(p["user"], p["level"], p["granted_by"]) for p in grants["permissions"]] == [
        ("gina", "EDIT", "bootstrap-admin")
    ]
    assert "history" not in grants and "protection" not in grants

    assert (
        run(capsys, secured, "permissions", "delete", "--experiment", experiment_id, "--user", "gina")[0] == 0
    )
    code, out, _ = run(capsys, secured, "permissions", "list", "--experiment", experiment_id, "--history")
    assert code == 0
    grants_table, history = out.split("\n\n")
    assert grants_table.splitlines() == ["USER  GROUP  LEVEL  GRANTED_BY  GRANTED"]
    rows = [line.split() for line in history.splitlines()[1:]]
    assert [row[2:] for row in rows] == [  # oldest first; the DELETE has no level
        ["bootstrap-admin", "SET", "gina", "-", "EDIT"],
        ["bootstrap-admin", "DELETE", "gina", "-", "-"],
    ]


@permissions_landed
def test_model_grants_and_protection(
    capsys: pytest.CaptureFixture[str], secured: SecuredServices, as_admin: pytest.MonkeyPatch
) -> None:
    with secured.client(BOOTSTRAP) as admin:
        admin.create_registered_model("Guarded")
    code, _, err = run(
        capsys, secured, "permissions", "set", "--model", "Guarded", "--group", "ml", "--level", "MANAGE"
    )
    assert code == 0, err
    protected = run_json(
        capsys, secured, "models", "protect", "Guarded", "--alias", "champion", "--no-production"
    )
    assert protected == {"name": "Guarded", "production": False, "aliases": ["champion"]}

    listed = run_json(capsys, secured, "permissions", "list", "--model", "Guarded", "--history")
    assert isinstance(listed, dict)
    assert [(p["group"], p["level"]) for p in listed["permissions"]] == [("ml", "MANAGE")]
    assert listed["protection"] == {"production": False, "aliases": ["champion"]}
    assert {v["action"] for v in listed["history"]} == {"SET", "PROTECTION"}

    code, out, _ = run(capsys, secured, "models", "protect", "Guarded")
    assert code == 0
    assert out.splitlines() == ["protected production  yes", "protected aliases     -"]

    # A user with READ only is refused, naming the level needed.
    as_admin.setenv("MODELREG_TOKEN", secured.user_token("reader"))
    code, out, err = run(
        capsys, secured, "permissions", "set", "--model", "Guarded", "--user", "x", "--level", "READ"
    )
    assert (code, out) == (1, "")
    assert err.startswith("error: PERMISSION_DENIED: ") and "MANAGE" in err
