"""The import rules between the distributions and the layers, checked on the source tree's AST.

Nothing is imported: every ``import`` statement of the client, the shared server plumbing and both
services (including ones inside functions and ``TYPE_CHECKING`` blocks) is read from the source and
checked against the rules below. A failure lists every violation as ``file:line: rule: imports X``.

- The client distribution (clients/modelreg) imports no server code and no server dependency,
  except that its model server (modelreg.serving, the ``serve`` extra) may use prometheus_client.
- A service's api reaches storage only through its domain: it imports neither its store nor its
  artifact stores.
- A store imports neither its service's api, nor grpc, nor generated code.
- A domain imports neither grpc, generated code, SQLAlchemy, its service's api, its store nor its
  artifact stores, except their Protocol modules (``store/base.py``, ``artifacts/base.py``).
- The adapters (the tracking artifact stores, the registry's lineage check) import neither their
  service's api nor its store; the artifact stores import neither grpc nor generated code.
- Neither service imports the other; modelreg_server imports neither.
- A migration imports only alembic, sqlalchemy and the standard library; a migrations ``env.py``
  may also import modelreg_server.db and its own store's schema.
- Only the interceptor, the access servicer and ``*/api/`` may read the current call (``call_context``,
  ``begin_call``); below the api layer the call arrives as a ``CallContext`` argument, and no
  module there imports ``contextvars``.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import pytest

ROOT = Path(__file__).resolve().parents[2]
# (directory on the import path, top-level package) of each package the tree ships.
PACKAGES = (
    ("clients", "modelreg"),
    (".", "modelreg_server"),
    (".", "tracking_service"),
    (".", "registry_service"),
)
SERVICES = ("tracking_service", "registry_service")
GENERATED = ("modelreg.tracking.v1", "modelreg.registry.v1", "modelreg.access.v1")
SERVER_ONLY = (
    "modelreg_server",
    *SERVICES,
    "sqlalchemy",
    "alembic",
    "minio",
    "prometheus_client",
    "grpc_health",
    "grpc_reflection",
    "jwt",
    "cryptography",
)
# The module holding each store's SQLAlchemy metadata, the one its migrations env.py may import.
SCHEMA_MODULES = {
    "tracking_service": "tracking_service.store.models",
    "registry_service": "registry_service.store.schema",
}
CURRENT_CALL = "modelreg_server.context"
# The interceptor sets the current call; the access servicer is the api layer both services share.
API_OUTSIDE_SERVICES = ("modelreg_server.interceptor", "modelreg_server.access.servicer")

# Violations that exist on purpose until other work lands: (file, imported module, rule) -> why.
# An entry that matches nothing fails the test, so it goes away with its violation.
KNOWN_VIOLATIONS: dict[tuple[str, str, str], str] = {}


@dataclass(frozen=True)
class Source:
    path: str  # relative to the repository, '/'-separated
    module: str  # dotted name

    @property
    def top(self) -> str:
        return self.module.split(".")[0]

    @property
    def layer(self) -> str | None:
        """api, domain, store, artifacts, migration or migration-env of a service file, else None."""
        parts = self.path.split("/")
        if self.top not in SERVICES or len(parts) < 3:
            return None
        if parts[1:4] == ["store", "migrations", "versions"]:
            return "migration"
        if parts[1:3] == ["store", "migrations"]:
            return "migration-env"
        return parts[1]


@dataclass(frozen=True)
class Import:
    line: int
    module: str  # the module imported, resolved: `from a.b import c` is a.b.c when c is a module
    name: str | None = None  # the attribute a `from` import takes from ``module``


def within(module: str, *prefixes: str) -> bool:
    return any(module == prefix or module.startswith(f"{prefix}.") for prefix in prefixes)


def sources(root: Path) -> list[Source]:
    found = []
    for base, package in PACKAGES:
        for path in sorted((root / base / package).rglob("*.py")):
            parts = path.relative_to(root / base).with_suffix("").parts
            module = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found.append(Source(path.relative_to(root).as_posix(), module))
    return found


def imports(root: Path, source: Source, modules: set[str]) -> Iterator[Import]:
    tree = ast.parse((root / source.path).read_text(), source.path)
    is_package = source.path.endswith("/__init__.py")
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (Import(node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the package of this module, up level - 1
                package = source.module.split(".")
                package = package if is_package else package[:-1]
                package = package[: len(package) - node.level + 1]
                base = ".".join([*package, *([node.module] if node.module else [])])
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                yield (
                    Import(node.lineno, submodule)
                    if submodule in modules
                    else Import(node.lineno, base, alias.name)
                )


# The rules: each returns why an import breaks it, or None.


# What the client's `serve` extra installs for modelreg.serving, shared with the server.
SERVE_EXTRA = ("prometheus_client",)


def client_rule(source: Source, imported: Import) -> str | None:
    if within(source.module, "modelreg.serving") and within(imported.module, *SERVE_EXTRA):
        return None
    if source.top == "modelreg" and within(imported.module, *SERVER_ONLY):
        return "the client distribution imports server code or a server dependency"
    return None


def api_rule(source: Source, imported: Import) -> str | None:
    if source.layer == "api" and within(imported.module, f"{source.top}.store", f"{source.top}.artifacts"):
        return "an api imports its store or artifact stores instead of going through its domain"
    return None


def adapter_rule(source: Source, imported: Import) -> str | None:
    own = (f"{source.top}.api", f"{source.top}.store")
    if source.layer == "artifacts" and within(imported.module, *own, "grpc", *GENERATED):
        return "an artifact store imports its service's api or store, grpc or generated code"
    if source.module == "registry_service.lineage" and within(imported.module, *own):
        return "the lineage adapter imports its service's api or store"
    return None


def store_rule(source: Source, imported: Import) -> str | None:
    if source.layer == "store" and within(imported.module, f"{source.top}.api", "grpc", *GENERATED):
        return "a store imports its service's api, grpc or generated code"
    return None


def domain_rule(source: Source, imported: Import) -> str | None:
    if source.layer != "domain":
        return None
    ports = [f"{source.top}.{package}" for package in ("store", "artifacts")]
    if within(imported.module, "grpc", *GENERATED, "sqlalchemy", f"{source.top}.api") or any(
        within(imported.module, port) and imported.module != f"{port}.base" for port in ports
    ):
        return (
            "a domain imports grpc, generated code, sqlalchemy, its api, its store or artifact stores "
            "(only their base Protocols)"
        )
    return None


def service_rule(source: Source, imported: Import) -> str | None:
    if source.top == "modelreg_server":
        others = SERVICES
    elif source.top in SERVICES:
        others = tuple(service for service in SERVICES if service != source.top)
    else:
        return None
    return f"{source.top} imports {' or '.join(others)}" if within(imported.module, *others) else None


def migration_rule(source: Source, imported: Import) -> str | None:
    allowed = {"alembic", "sqlalchemy", *sys.stdlib_module_names}
    if source.layer == "migration" and imported.module.split(".")[0] not in allowed:
        return "a migration imports something other than alembic, sqlalchemy and the standard library"
    if source.layer == "migration-env" and not (
        imported.module.split(".")[0] in allowed
        or imported.module in ("modelreg_server.db", SCHEMA_MODULES[source.top])
    ):
        return "a migrations env.py imports something other than alembic, sqlalchemy, stdlib, modelreg_server.db and its schema"
    return None


def current_call_rule(source: Source, imported: Import) -> str | None:
    reads_call = imported.module == CURRENT_CALL and imported.name != "CallContext"
    may_read = source.module in API_OUTSIDE_SERVICES or source.layer == "api"
    if reads_call and source.top != "modelreg" and source.module != CURRENT_CALL and not may_read:
        return "below the api layer only CallContext may come from modelreg_server.context"
    below_api = source.layer in ("domain", "store", "artifacts", "migration", "migration-env")
    if below_api and imported.module == "contextvars":
        return "below the api layer nothing reads context variables: the call is an argument"
    return None


RULES: tuple[Callable[[Source, Import], str | None], ...] = (
    client_rule,
    api_rule,
    adapter_rule,
    store_rule,
    domain_rule,
    service_rule,
    migration_rule,
    current_call_rule,
)


class Violation(NamedTuple):
    path: str
    module: str
    rule: str
    report: str  # file:line: rule: why: imports module (names)


def violations(root: Path) -> Iterator[Violation]:
    """One per import statement, imported module and rule it breaks."""
    found = sources(root)
    modules = {source.module for source in found}
    for source in found:
        broken: dict[tuple[int, str, str], tuple[str, list[str]]] = {}
        for imported in imports(root, source, modules):
            for rule in RULES:
                if (why := rule(source, imported)) is not None:
                    _, names = broken.setdefault((imported.line, imported.module, rule.__name__), (why, []))
                    names.extend([imported.name] if imported.name else [])
        for (line, module, rule_name), (why, names) in broken.items():
            shown = f"{module} ({', '.join(names)})" if names else module
            report = f"{source.path}:{line}: {rule_name}: {why}: imports {shown}"
            yield Violation(source.path, module, rule_name, report)


def test_the_source_tree_keeps_its_layers() -> None:
    found = list(violations(ROOT))
    unexpected = [v.report for v in found if (v.path, v.module, v.rule) not in KNOWN_VIOLATIONS]
    stale = set(KNOWN_VIOLATIONS) - {(v.path, v.module, v.rule) for v in found}
    assert not unexpected, "layering violations:\n" + "\n".join(unexpected)
    assert not stale, f"KNOWN_VIOLATIONS entries that no longer occur (remove them): {sorted(stale)}"


@pytest.mark.parametrize(
    ("path", "line", "rule"),
    [
        ("clients/modelreg/fluent.py", "from modelreg_server.db import upgrade", "client_rule"),
        ("clients/modelreg/models/fetch.py", "import sqlalchemy", "client_rule"),
        ("registry_service/store/sql.py", "from registry_service.api import convert", "store_rule"),
        ("tracking_service/store/sql.py", "from modelreg.tracking.v1 import tracking_pb2", "store_rule"),
        ("tracking_service/store/sql.py", "import grpc", "store_rule"),
        ("registry_service/domain/service.py", "from registry_service.store.sql import Sql", "domain_rule"),
        ("registry_service/domain/rules.py", "from ..store import MIGRATIONS_DIR", "domain_rule"),
        ("tracking_service/domain/rules.py", "from modelreg.tracking.v1 import tracking_pb2", "domain_rule"),
        ("tracking_service/domain/rules.py", "import sqlalchemy as sa", "domain_rule"),
        ("registry_service/lineage.py", "from tracking_service.domain import rules", "service_rule"),
        ("tracking_service/api/servicer.py", "from tracking_service.store.sql import Sql", "api_rule"),
        ("registry_service/api/servicer.py", "import registry_service.store", "api_rule"),
        ("tracking_service/api/servicer.py", "from tracking_service.artifacts import s3", "api_rule"),
        ("tracking_service/domain/service.py", "from tracking_service.artifacts import s3", "domain_rule"),
        ("tracking_service/artifacts/file.py", "import grpc", "adapter_rule"),
        ("tracking_service/artifacts/s3.py", "from tracking_service.api import converters", "adapter_rule"),
        ("registry_service/lineage.py", "from registry_service.store import sql", "adapter_rule"),
        ("registry_service/store/sql.py", "import contextvars", "current_call_rule"),
        ("tracking_service/domain/service.py", "from contextvars import ContextVar", "current_call_rule"),
        ("modelreg_server/db.py", "import registry_service.store", "service_rule"),
        (
            "registry_service/store/migrations/versions/0001_initial.py",
            "import registry_service",
            "migration_rule",
        ),
        ("tracking_service/store/migrations/versions/0001_initial.py", "import minio", "migration_rule"),
        ("tracking_service/store/migrations/env.py", "from tracking_service import config", "migration_rule"),
        (
            "registry_service/store/sql.py",
            "from modelreg_server.context import call_context",
            "current_call_rule",
        ),
        ("tracking_service/artifacts/s3.py", "from modelreg_server import context", "current_call_rule"),
        (
            "registry_service/domain/service.py",
            "from modelreg_server.context import begin_call",
            "current_call_rule",
        ),
    ],
)
def test_each_rule_catches_its_violation(tmp_path: Path, path: str, line: str, rule: str) -> None:
    for base, package in PACKAGES:  # an empty package of each kind, plus the file under test
        (tmp_path / base / package).mkdir(parents=True, exist_ok=True)
    for module in (
        "modelreg_server/context.py",
        "modelreg_server/db.py",
        "registry_service/store/__init__.py",
    ):
        (tmp_path / module).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / module).touch()
    (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / path).write_text(f"import os\n\n{line}\n")  # os: the standard library breaks no rule
    assert [(v.path, v.rule) for v in violations(tmp_path)] == [(path, rule)]
