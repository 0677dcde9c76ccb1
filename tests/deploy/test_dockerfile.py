"""Static checks of the Dockerfile: no Docker engine runs here, so the file itself is tested.

The image must hold the server distribution and the client it depends on, without the client's
sklearn extra: scikit-learn, pandas, SciPy, NumPy and skops have no place in a server image.
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


def _stages() -> list[Stage]:
    """Each stage's (INSTRUCTION, arguments), comments dropped and continuation lines joined."""
    lines = [line for line in DOCKERFILE.splitlines() if not line.lstrip().startswith("#")]
    stages: list[Stage] = []
    for line in "\n".join(lines).replace("\\\n", " ").splitlines():
        if line.strip():
            instruction, _, arguments = line.strip().partition(" ")
            if instruction.upper() == "FROM":
                stages.append([])
            stages[-1].append((instruction.upper(), arguments.strip()))
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
    assert len(_stages()) == 2
    assert "USER modelreg" in DOCKERFILE
    assert "--no-index" in DOCKERFILE  # the final stage installs only the wheels built before it


def test_the_image_installs_only_the_server_distribution() -> None:
    _, final = _stages()
    (install,) = _pip(final, "install")
    ((name, extras),) = _requirements(install)
    assert name == "modelreg-server" and extras <= _DRIVER_EXTRAS
    assert "--no-index" in install


def test_the_build_stage_builds_both_distributions_without_the_sklearn_extra() -> None:
    build, _ = _stages()
    (wheel,) = _pip(build, "wheel")
    built = dict(_requirements(wheel))
    assert set(built) == {"./clients", "."}
    assert built["./clients"] == set()  # the client without its sklearn extra
    assert built["."] <= _DRIVER_EXTRAS
    assert "sklearn" not in " ".join(arguments for _, arguments in build + _stages()[1])


def test_the_build_stage_copies_what_the_distributions_are_built_from() -> None:
    build, _ = _stages()
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
