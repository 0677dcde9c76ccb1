"""The `modelreg` CLI in-process: tables, --json, exit codes and one-line errors."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import unicodedata
import uuid
from pathlib import Path

import pytest

from modelreg import Client
from modelreg.cli import ProgressBar, main
from modelreg.models.model_dir import sha256_file
from modelreg_server.launcher import free_port

from .conftest import Seeded


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def run_json(capsys: pytest.CaptureFixture[str], seeded: Seeded, *argv: str) -> object:
    code, out, err = run(capsys, *argv, *seeded.targets(), "--json")
    assert code == 0, err
    return json.loads(out)


def test_experiments_and_runs(capsys: pytest.CaptureFixture[str], seeded: Seeded) -> None:
    experiments = run_json(capsys, seeded, "experiments", "list")
    assert isinstance(experiments, list)
    names = {x["name"] for x in experiments}
    assert {"Default", "cli-experiment"} <= names
    by_name = run_json(capsys, seeded, "experiments", "show", "cli-experiment")
    assert isinstance(by_name, dict)
    by_id = run_json(capsys, seeded, "experiments", "show", by_name["experiment_id"])
    assert by_id == by_name

    runs = run_json(capsys, seeded, "runs", "list", "--experiment-id", by_name["experiment_id"])
    assert isinstance(runs, list)
    assert [r["info"]["run_id"] for r in runs] == [seeded.run_ids[1], seeded.run_ids[0]]  # newest first
    shown = run_json(capsys, seeded, "runs", "show", seeded.run_ids[0])
    assert isinstance(shown, dict)
    assert shown["data"]["params"] == {"fit_intercept": "True"}
    assert shown["info"]["status"] == "FINISHED"

    code, out, _ = run(capsys, *seeded.targets(), "runs", "show", seeded.run_ids[0])
    assert code == 0
    assert "fit_intercept=True" in out and seeded.run_ids[0] in out


def test_models_and_versions(capsys: pytest.CaptureFixture[str], seeded: Seeded) -> None:
    models = run_json(capsys, seeded, "models", "list")
    assert isinstance(models, list)
    assert seeded.model in [m["name"] for m in models]
    model = run_json(capsys, seeded, "models", "show", seeded.model)
    assert isinstance(model, dict) and model["name"] == seeded.model

    versions = run_json(capsys, seeded, "versions", "list", seeded.model)
    assert isinstance(versions, list)
    assert [v["version"] for v in versions] == [2, 1]
    version = run_json(capsys, seeded, "versions", "show", seeded.model, "1")
    assert isinstance(version, dict)
    assert version["run_id"] == seeded.run_ids[0]
    assert {f["path"] for f in version["lineage"]["files"]} == {"modelreg-model.json", "model.skops"}

    code, out, _ = run(capsys, "versions", "list", seeded.model, *seeded.targets())
    assert code == 0
    header, *rows = out.splitlines()
    assert header.split() == ["VERSION", "STAGE", "ALIASES", "STATUS", "RUN_ID", "CREATED", "SOURCE"]
    assert [row.split()[0] for row in rows] == ["2", "1"]


def test_stage_transitions_aliases_history_and_rollback(
    capsys: pytest.CaptureFixture[str], seeded: Seeded
) -> None:
    t = seeded.targets()
    name = seeded.model
    assert run(capsys, *t, "versions", "transition", name, "1", "Production")[0] == 0
    code, out, _ = run(capsys, *t, "versions", "transition", name, "2", "production")
    assert code == 0 and "version 2 is now in Production" in out
    assert run_json(capsys, seeded, "versions", "show", name, "1")["current_stage"] == "Archived"  # type: ignore[index]

    code, _, _ = run(capsys, *t, "versions", "transition", name, "1", "Staging", "--no-archive")
    assert code == 0

    assert run(capsys, *t, "alias", "set", name, "champion", "2")[0] == 0
    assert run_json(capsys, seeded, "versions", "show", name, "2")["aliases"] == ["champion"]  # type: ignore[index]
    assert run(capsys, *t, "alias", "delete", name, "champion")[0] == 0
    code, _, err = run(capsys, *t, "alias", "delete", name, "champion")
    assert code == 1 and err.startswith("error: ALIAS_NOT_FOUND: ")

    history = run_json(capsys, seeded, "history", name, "--version", "2")
    assert isinstance(history, list)
    assert {e["version"] for e in history} == {2}
    assert [e["action"] for e in history][:2] == ["VERSION_CREATED", "STAGE_TRANSITIONED"]

    rolled = run_json(capsys, seeded, "rollback", name, "Production")
    assert isinstance(rolled, dict)
    assert rolled["restored"]["version"] == 1 and rolled["archived"]["version"] == 2


def test_download_writes_a_verified_model(
    capsys: pytest.CaptureFixture[str], seeded: Seeded, tmp_path: Path
) -> None:
    target = tmp_path / "out"
    code, out, err = run(
        capsys, *seeded.targets(), "download", f"models:/{seeded.model}/1", "-o", str(target)
    )
    assert code == 0, err
    assert sorted(p.name for p in target.iterdir()) == ["model.skops", "modelreg-model.json"]
    assert str(target) in out


def test_download_into_a_directory_with_files_says_so_and_force_writes_the_model_there(
    capsys: pytest.CaptureFixture[str], seeded: Seeded, tmp_path: Path
) -> None:
    target = tmp_path / "out"
    target.mkdir()
    (target / "notes.txt").write_text("mine")
    (target / "model.skops").write_bytes(b"stale")
    argv = [*seeded.targets(), "download", f"models:/{seeded.model}/1", "-o", str(target)]
    code, out, err = run(capsys, *argv)
    assert (code, out) == (1, "")
    assert err == (
        f"error: DESTINATION_EXISTS: {target} exists and is not empty: choose another --output, or pass "
        "--force to write the model's files into it (files of the same name are replaced, others are kept)\n"
    )
    assert (target / "model.skops").read_bytes() == b"stale"

    listed = run_json(capsys, seeded, *argv[4:], "--force")
    assert isinstance(listed, dict)
    assert {path: sha256_file(target / path) for path in listed["files"]} == listed["files"]
    assert (target / "notes.txt").read_text() == "mine"
    assert sorted(p.name for p in target.iterdir()) == ["model.skops", "modelreg-model.json", "notes.txt"]

    (tmp_path / "file").write_text("")
    code, _, err = run(capsys, *argv[:-1], str(tmp_path / "file"), "--force")
    assert code == 1 and err.startswith(
        f"error: LOCAL_FILE_ERROR: {tmp_path / 'file'} exists and is not a directory"
    )


@pytest.mark.parametrize("uri", ["models:/{model}/1", "runs:/{run}/model"])
def test_download_json_lists_every_file_written(
    capsys: pytest.CaptureFixture[str], seeded: Seeded, tmp_path: Path, uri: str
) -> None:
    target = tmp_path / "out"
    uri = uri.format(model=seeded.model, run=seeded.run_ids[0])
    listed = run_json(capsys, seeded, "download", uri, "-o", str(target))
    assert isinstance(listed, dict)
    written = {p.relative_to(target).as_posix(): sha256_file(p) for p in target.rglob("*") if p.is_file()}
    assert listed["files"] == written
    assert "modelreg-model.json" in written


@pytest.mark.parametrize(
    ("argv", "reason"),
    [
        (["models", "show", "NoSuchModel"], "REGISTERED_MODEL_NOT_FOUND"),
        (["runs", "show", "0" * 32], "RUN_NOT_FOUND"),
        (["versions", "transition", "{model}", "99", "Production"], "MODEL_VERSION_NOT_FOUND"),
        (["versions", "show", "x", "one"], "INVALID_VERSION"),
        (["rollback", "x", "Archived"], "INVALID_STAGE"),
        (["versions", "list", "NoSuchModel"], "REGISTERED_MODEL_NOT_FOUND"),
        (["versions", "list", "It's-{model}"], "REGISTERED_MODEL_NOT_FOUND"),
        (["history", "NoSuchModel"], "REGISTERED_MODEL_NOT_FOUND"),
        (["history", "{model}", "--version", "99"], "MODEL_VERSION_NOT_FOUND"),
        (["runs", "list", "--experiment-id", "987654"], "EXPERIMENT_NOT_FOUND"),
    ],
)
def test_failures_exit_1_with_one_line(
    capsys: pytest.CaptureFixture[str], seeded: Seeded, argv: list[str], reason: str
) -> None:
    code, out, err = run(capsys, *seeded.targets(), *(a.format(model=seeded.model) for a in argv))
    assert code == 1
    assert out == ""
    assert err.startswith(f"error: {reason}: ")
    assert err.count("\n") == 1


def test_verbose_adds_the_traceback(capsys: pytest.CaptureFixture[str], seeded: Seeded) -> None:
    code, _, err = run(capsys, *seeded.targets(), "--verbose", "models", "show", "NoSuchModel")
    assert code == 1
    assert "Traceback" in err and err.rstrip().splitlines()[-1].startswith(
        "error: REGISTERED_MODEL_NOT_FOUND: "
    )


def test_a_known_model_with_no_matching_version_is_an_empty_table(
    capsys: pytest.CaptureFixture[str], seeded: Seeded
) -> None:
    code, out, err = run(
        capsys, *seeded.targets(), "versions", "list", seeded.model, "--filter", "version > 99"
    )
    assert (code, err) == (0, "")
    assert out.split() == ["VERSION", "STAGE", "ALIASES", "STATUS", "RUN_ID", "CREATED", "SOURCE"]


@pytest.mark.parametrize(
    ("argv", "env", "error"),
    [
        (
            ["--tracking-uri", "http://localhost:5000", "runs", "list"],
            {},
            "error: INVALID_TARGET: --tracking-uri 'http://localhost:5000' is not a gRPC target: use "
            "host:port, grpc://host:port or grpcs://host:port\n",
        ),
        (
            ["models", "list", "--tracking-uri", "localhost:1"],
            {"MODELREG_REGISTRY_URI": "https://registry.example.com"},
            "error: INVALID_TARGET: MODELREG_REGISTRY_URI 'https://registry.example.com' is not a gRPC "
            "target: use host:port, grpc://host:port or grpcs://host:port\n",
        ),
        (
            ["whoami", "--registry-uri", "s3://bucket"],
            {},
            "error: INVALID_TARGET: --registry-uri 's3://bucket' is not a gRPC target: use host:port, "
            "grpc://host:port or grpcs://host:port\n",
        ),
        (
            ["download", "models:/x/Prod", "-o", "unused"],
            {},
            "error: INVALID_MODEL_URI: invalid model URI 'models:/x/Prod': 'Prod' is neither a version "
            "number, a stage nor 'latest'\n",
        ),
    ],
)
def test_a_bad_uri_is_a_usage_error_in_the_tools_words(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    argv: list[str],
    env: dict[str, str],
    error: str,
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert run(capsys, *argv) == (2, "", error)


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["models"],
        ["versions", "transition", "x"],
        ["nonsense"],
        ["runs", "list", "--max-results", "x"],
        ["runs", "list", "--max-results", "-1"],
    ],
)
def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    code, _, err = run(capsys, *argv)
    assert code == 2
    assert "usage:" in err


def test_unreachable_service_exits_3(capsys: pytest.CaptureFixture[str]) -> None:
    dead = f"127.0.0.1:{free_port()}"
    code, _, err = run(capsys, "--registry-uri", dead, "--tracking-uri", dead, "models", "list")
    assert code == 3
    assert err.startswith("error: UNAVAILABLE: ")


def test_environment_targets_are_the_default(
    capsys: pytest.CaptureFixture[str], seeded: Seeded, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODELREG_TRACKING_URI", seeded.tracking)
    monkeypatch.setenv("MODELREG_REGISTRY_URI", seeded.registry)
    code, out, _ = run(capsys, "models", "show", seeded.model, "--json")
    assert code == 0 and json.loads(out)["name"] == seeded.model


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_draws_only_on_a_terminal() -> None:
    terminal = _Terminal()
    bar = ProgressBar(terminal, "download")
    bar(0, 2 * 1024 * 1024)
    bar(2 * 1024 * 1024, 2 * 1024 * 1024)
    bar.finish()
    drawn = terminal.getvalue()
    assert drawn.startswith("\rdownload [") and "100% 2.0/2.0 MiB" in drawn and drawn.endswith("\n")

    piped = io.StringIO()
    bar = ProgressBar(piped, "download")
    bar(1, 2)
    bar.finish()
    assert piped.getvalue() == ""


def test_db_upgrade_is_idempotent(
    capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in (
        "MODELREG_TRACKING_DATABASE_URL",
        "MODELREG_REGISTRY_DATABASE_URL",
        "MODELREG_ARTIFACT_ROOT",
    ):
        monkeypatch.delenv(name, raising=False)
    for _ in range(2):
        assert main(["db", "upgrade", "all", "--data-dir", str(tmp_path)]) == 0
        out = capfd.readouterr().out
        assert "tracking: database at head" in out and "registry: database at head" in out
    assert {p.name for p in tmp_path.iterdir()} >= {"tracking.db", "registry.db"}
    assert main(["db", "upgrade", "registry", "--data-dir", str(tmp_path)]) == 0
    assert "tracking:" not in capfd.readouterr().out


def test_json_option_before_the_command(capsys: pytest.CaptureFixture[str], seeded: Seeded) -> None:
    code, out, _ = run(capsys, "--json", *seeded.targets(), "versions", "list", seeded.model)
    assert code == 0
    assert [v["version"] for v in json.loads(out)] == [2, 1]


def test_text_from_the_server_cannot_drive_the_terminal(
    capsys: pytest.CaptureFixture[str], seeded: Seeded
) -> None:
    hostile = "\x1b[2J\x1b]0;pwned\x07\x9b31m\nfake row\u202e"
    name = f"Escapes-{seeded.model}"
    with Client(seeded.tracking, seeded.registry) as client:
        client.create_registered_model(name, tags={"note": hostile}, description=hostile)
    shown = "\\x1b[2J\\x1b]0;pwned\\x07\\x9b31m\\nfake row\\u202e"
    for argv in (["models", "list", "--filter", f"name = '{name}'"], ["models", "show", name]):
        code, out, err = run(capsys, *seeded.targets(), *argv)
        assert (code, err) == (0, "")
        assert shown in out
        assert f"note={shown}" in out or argv[1] == "list"  # tags: on `models show` only
        assert not [c for c in out.replace("\n", "") if unicodedata.category(c) in ("Cc", "Zl", "Zp")]
    # In an error the server's message quotes the name, and it is escaped there too.
    code, out, err = run(capsys, *seeded.targets(), "models", "show", f"Nope{hostile}")
    assert (code, out) == (1, "")
    assert err.count("\n") == 1 and shown in err and "\x1b" not in err
    # --json carries the text itself, JSON-escaped.
    model = run_json(capsys, seeded, "models", "show", name)
    assert isinstance(model, dict) and model["description"] == hostile


def _closed_pipe_run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    """``modelreg ARGV`` with stdout a pipe whose reader has already gone."""
    reader, writer = os.pipe()
    os.close(reader)
    try:
        return subprocess.run(
            [sys.executable, "-m", "modelreg.cli", *argv],
            stdout=writer,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        os.close(writer)


@pytest.mark.parametrize("command", [["models", "list"], ["versions", "list", "{model}"]])
def test_a_closed_pipe_ends_the_command_quietly_with_status_141(seeded: Seeded, command: list[str]) -> None:
    done = _closed_pipe_run([*seeded.targets(), *(a.format(model=seeded.model) for a in command)])
    assert (done.returncode, done.stderr) == (141, "")


FROM_START = ("--from-beginning", "--json")


def test_events_watch_prints_each_event_as_it_is_written(seeded: Seeded) -> None:
    """``modelreg events watch NAME --from-beginning --json``: one JSON object per line, with the
    cursor that resumes after it; the model's history first, then what is written meanwhile."""
    history = Client(seeded.tracking, seeded.registry).get_model_history(seeded.model)
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "modelreg.cli",
            *seeded.targets(),
            "events",
            "watch",
            seeded.model,
            *FROM_START,
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    try:
        lines = [json.loads(process.stdout.readline()) for _ in history]
        Client(seeded.tracking, seeded.registry).set_registered_model_tag(seeded.model, "watched", "yes")
        lines.append(json.loads(process.stdout.readline()))
    finally:
        process.kill()
        process.wait()
    assert [line["event_id"] for line in lines[:-1]] == [event.event_id for event in history]
    assert (lines[-1]["action"], lines[-1]["from_value"], lines[-1]["to_value"]) == (
        "MODEL_TAG_SET",
        "watched",
        "yes",
    )
    assert all(line["cursor"] for line in lines)


def test_events_watch_shows_why_a_model_server_refused_a_version(seeded: Seeded) -> None:
    """A serving report's line names the instance and, after the actor, its detail (the reason
    a version was refused, which is in the comment)."""
    name = f"served-{uuid.uuid4().hex[:8]}"
    with Client(seeded.tracking, seeded.registry) as client:
        client.create_registered_model(name)
        client.create_model_version(name, "s3://bucket/served/1")
        client.report_serving_status(
            name, 1, loaded=False, detail="digest mismatch: model.skops", instance="pod-3"
        )
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "modelreg.cli",
            *seeded.targets(),
            "events",
            "watch",
            name,
            "--action",
            "SERVING_LOAD_FAILED",
            "--from-beginning",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    try:
        line = process.stdout.readline()
    finally:
        process.kill()
        process.wait()
    assert f"{name} v1  SERVING_LOAD_FAILED - -> pod-3  by " in line
    assert line.rstrip("\n").endswith("  digest mismatch: model.skops")
