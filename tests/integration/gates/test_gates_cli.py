"""The promotion commands of `modelreg` (the CLI's main(), output captured) against both real
servers: a refusal is one line naming the clause and the values, with a non-zero exit status."""

from __future__ import annotations

import json

import pytest

from modelreg.cli import main
from tests.integration.access.conftest import BOOTSTRAP
from tests.integration.gates.conftest import Registry


def run(capsys: pytest.CaptureFixture[str], gated: Registry, *argv: str) -> tuple[int, str, str]:
    code = main(["--tracking-uri", gated.tracking, "--registry-uri", gated.registry, *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_a_refused_promotion_is_one_line_naming_the_clause_and_values(
    capsys: pytest.CaptureFixture[str], gated: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODELREG_TOKEN", BOOTSTRAP)
    name = gated.model()
    bad, good = gated.version(name, 13.4), gated.version(name, 11.5)
    code, out, err = run(
        capsys, gated, "gates", "set", name, "--target", "Production", "--condition", "metrics.rmse < 12"
    )
    assert code == 0, err
    assert out.splitlines()[1].split()[:4] == ["Production", "metrics.rmse", "<", "12"]

    code, out, err = run(capsys, gated, "promote", name, str(bad.version), "--to", "Production")
    assert (code, out) == (1, "")
    assert err == "error: PROMOTION_GATE_FAILED: metrics.rmse < 12 failed: 13.4 is not < 12\n"

    code, out, err = run(capsys, gated, "promote", name, str(good.version), "--to", "Production")
    assert (code, out, err) == (0, f"{name} version {good.version} is now in Production\n", "")

    code, out, err = run(capsys, gated, "gates", "set", name, "--target", "@champion", "--condition", "x <")
    assert code == 1 and err.startswith("error: INVALID_GATE_CONDITION: invalid condition at position")
    code, out, err = run(capsys, gated, "promote", name, str(bad.version), "--to", "@champion")
    assert code == 0, err

    code, out, err = run(capsys, gated, "gates", "show", name, "--json")
    assert [g["target"] for g in json.loads(out)] == ["Production"]
    code, out, err = run(capsys, gated, "gates", "delete", name, "--target", "Production")
    assert (code, err) == (0, "")


def test_the_approval_commands(
    capsys: pytest.CaptureFixture[str], gated: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = gated.model()
    version = str(gated.version(name, 1.0).version)
    gated.client("manage").set_promotion_gate(name, "Staging", "", approvals_required=1)
    tokens = gated.tokens
    monkeypatch.setenv("MODELREG_TOKEN", tokens["manage"])
    code, out, err = run(capsys, gated, "promote", name, version, "--to", "Staging")
    assert code == 1 and err.startswith("error: APPROVAL_REQUIRED: promoting version")
    code, out, err = run(capsys, gated, "approvals", "request", name, version, "--to", "Staging", "--json")
    assert code == 0, err
    request_id = str(json.loads(out)[0]["request_id"])
    code, out, err = run(capsys, gated, "approvals", "approve", name, request_id)
    assert code == 1 and err.startswith("error: SELF_APPROVAL:")
    monkeypatch.setenv("MODELREG_TOKEN", tokens["manage2"])
    code, out, err = run(capsys, gated, "approvals", "approve", name, request_id)
    assert code == 0, err
    code, out, err = run(capsys, gated, "approvals", "list", name, "--status", "approved")
    assert [line.split()[:4] for line in out.splitlines()[1:]] == [
        [request_id, version, "Staging", "APPROVED"]
    ]
    monkeypatch.setenv("MODELREG_TOKEN", tokens["manage"])
    code, out, err = run(capsys, gated, "promote", name, version, "--to", "Staging", "--comment", "approved")
    assert code == 0, err


def test_an_admin_overrides_an_alias_gate_from_the_cli(
    capsys: pytest.CaptureFixture[str], gated: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = gated.model()
    version = str(gated.version(name, 40.0).version)
    gated.client("manage").set_promotion_gate(name, "@champion", "metrics.rmse < 12", approvals_required=1)
    monkeypatch.setenv("MODELREG_TOKEN", gated.tokens["manage"])
    code, out, err = run(capsys, gated, "promote", name, version, "--to", "@champion", "--override-gates")
    assert code == 1 and err.startswith("error: PERMISSION_DENIED: overriding promotion gates needs an admin")
    monkeypatch.setenv("MODELREG_TOKEN", BOOTSTRAP)
    code, out, err = run(capsys, gated, "promote", name, version, "--to", "@champion", "--override-gates")
    assert (code, out, err) == (0, f"{name} version {version} is now @champion\n", "")
    event = next(e for e in gated.client("read").get_model_history(name) if e.action == "ALIAS_SET")
    assert (event.gate_overridden, event.actor) == (True, "bootstrap-admin")
    assert [(r.clause, r.passed, r.left) for r in event.gate_results] == [("metrics.rmse < 12", False, "40")]
