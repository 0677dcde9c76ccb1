"""Static checks of the Dockerfile: no Docker engine runs here, so the file itself is tested.

The default image (the last stage) must hold the server distribution and the client it depends on,
without the client's sklearn extra: scikit-learn, pandas, SciPy, NumPy and skops have no place in a
server image. The `serving` target holds the client distribution with its serve and sklearn
extras, and nothing of the server.
"""

from __future__ import annotations

import re
import shlex
import tomllib

from tests.deploy.compose import ROOT

DOCKERFILE = (ROOT / "Dockerfile").read_text()
# pip options whose value is the next word, so that word is not a requirement.
_VALUED_OPTIONS = {"--wheel-dir", "-w", "--find-links", "-f", "--index-url", "-i", "--extra-index-url"}
_REQUIREMENT = re.compile(r"(?P<name>[^\[\]]+)(?:\[(?P<extras>[^\]]*)\])?")
_DRIVER_EXTRAS = {"postgres", "mysql"}

Stage = list[tuple[str, str]]


def _stages() -> dict[str, Stage]:
    """Each stage's (INSTRUCTION, arguments) by the stage's name, in file order, comments dropped
    and continuation lines joined."""
    lines = [line for line in DOCKERFILE.splitlines() if not line.lstrip().startswith("#")]
    stages: dict[str, Stage] = {}
    for line in "\n".join(lines).replace("\\\n", " ").splitlines():
        if line.strip():
            instruction, _, arguments = line.strip().partition(" ")
            if instruction.upper() == "FROM":
                words = arguments.split()
                assert len(words) == 3 and words[1].upper() == "AS", f"every stage is named: {line}"
                current = stages.setdefault(words[2], [])
            current.append((instruction.upper(), arguments.strip()))
    return stages


def _pip(stage: Stage, subcommand: str) -> list[list[str]]:
    """The arguments of every `pip <subcommand>` the stage runs."""
    return [
        words[2:]
        for instruction, arguments in stage
        if instruction == "RUN"
        for command in arguments.split("&&")
        if (words := shlex.split(command))[:2] == ["pip", subcommand]
    ]


def _requirements(arguments: list[str]) -> list[tuple[str, set[str]]]:
    """(name or path, extras) of each requirement on a pip command line."""
    assert not {"-r", "--requirement", "-e", "--editable"} & set(arguments), "requirements must be inline"
    requirements, skip = [], False
    for word in arguments:
        if skip or word.startswith("-"):
            skip = not skip and word in _VALUED_OPTIONS
            continue
        match = _REQUIREMENT.fullmatch(word)
        assert match is not None, word
        extras = {extra.strip() for extra in (match["extras"] or "").split(",") if extra.strip()}
        requirements.append((match["name"], extras))
    return requirements


def test_dockerfile_is_multi_stage_and_non_root() -> None:
    stages = _stages()
    # The last stage is what `docker build .` (and compose's servers) build.
    assert list(stages) == ["serving-build", "serving", "build", "server"]
    for final in (stages["server"], stages["serving"]):
        assert ("USER", "modelreg") in final
        (install,) = _pip(final, "install")
        assert "--no-index" in install  # only the wheels built before it


def test_the_image_installs_only_the_server_distribution() -> None:
    final = _stages()["server"]
    (install,) = _pip(final, "install")
    ((name, extras),) = _requirements(install)
    assert name == "modelreg-server" and extras <= _DRIVER_EXTRAS
    assert "--no-index" in install


def test_the_build_stage_builds_both_distributions_without_the_sklearn_extra() -> None:
    build = _stages()["build"]
    (wheel,) = _pip(build, "wheel")
    built = dict(_requirements(wheel))
    assert set(built) == {"./clients", "."}
    assert built["./clients"] == set()  # the client without its sklearn extra
    assert built["."] <= _DRIVER_EXTRAS
    assert "sklearn" not in " ".join(arguments for _, arguments in build + _stages()["server"])


def test_the_serving_image_installs_only_the_client_with_its_serve_and_sklearn_extras() -> None:
    stages = _stages()
    (wheel,) = _pip(stages["serving-build"], "wheel")
    assert _requirements(wheel) == [("./clients", {"serve", "sklearn"})]
    assert [arguments for instruction, arguments in stages["serving-build"] if instruction == "COPY"] == [
        "clients ./clients"
    ]
    (install,) = _pip(stages["serving"], "install")
    assert _requirements(install) == [("modelreg", {"serve", "sklearn"})]
    serving_text = " ".join(
        arguments for stage in ("serving-build", "serving") for _, arguments in stages[stage]
    )
    assert "modelreg-server" not in serving_text and "--from=build " not in serving_text
    assert ("ENTRYPOINT", '["modelreg", "serve"]') in stages["serving"]
    assert ("EXPOSE", "5001") in stages["serving"]


def test_the_build_stage_copies_what_the_distributions_are_built_from() -> None:
    build = _stages()["build"]
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = project["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"]
    copied = {
        source
        for instruction, arguments in build
        if instruction == "COPY"
        for source in shlex.split(arguments)[:-1]
        if not source.startswith("--")
    }
    assert {*packages, "clients", "pyproject.toml", project["project"]["readme"], "LICENSE"} <= copied
