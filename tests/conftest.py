"""Shared fixtures: database backends, the S3-compatible server, and the backend-skip guard.

Backends:
- SQLite always runs.
- PostgreSQL runs when MODELREG_TEST_POSTGRES_URL is set (e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test),
  MySQL/MariaDB when MODELREG_TEST_MYSQL_URL is set (e.g. mysql+pymysql://root@127.0.0.1:3306/test).
  Each test gets a database of its own, created on that server and dropped afterwards.
- S3 runs against moto's S3-compatible server on 127.0.0.1 (started once per session).
- mlflow (tests/integration/mlflow_compat) runs MLflow users' scripts on a real MLflow server from
  the benchmark's MLflow venv, built on first use; it skips only when PyPI is unreachable.

When MODELREG_REQUIRE_BACKENDS lists backends (e.g. "postgres,s3", as .ci/run sets it), a test of
such a backend that would skip fails instead, and the session fails if none of them passed.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass

import pytest
import sqlalchemy as sa
from hypothesis import settings

# Property tests assert behaviour, never speed: hypothesis' default 200 ms deadline per example
# would fail a test on a loaded CI machine for being slow, so no test has one.
settings.register_profile("modelreg", deadline=None)
settings.load_profile("modelreg")

POSTGRES_URL_ENV = "MODELREG_TEST_POSTGRES_URL"
MYSQL_URL_ENV = "MODELREG_TEST_MYSQL_URL"
REQUIRED_ENV = "MODELREG_REQUIRE_BACKENDS"

_BACKEND_ENV = {"postgres": POSTGRES_URL_ENV, "mysql": MYSQL_URL_ENV}


def _required_backends() -> set[str]:
    return {b.strip() for b in os.environ.get(REQUIRED_ENV, "").split(",") if b.strip()}


def skip_or_fail(backend: str, why: str) -> None:
    """Skips a backend test, or fails it when the run requires that backend."""
    if backend in _required_backends():
        pytest.fail(f"{backend} tests are required ({REQUIRED_ENV}) but cannot run: {why}")
    pytest.skip(f"{backend} tests skipped: {why}")


def _server_url(backend: str) -> str:
    url = os.environ.get(_BACKEND_ENV[backend], "")
    if not url:
        skip_or_fail(backend, f"{_BACKEND_ENV[backend]} is not set")
    return url


def _fresh_database(backend: str, options: str = "") -> Iterator[str]:
    """Creates a uniquely named database on the backend's server, with the CREATE DATABASE
    ``options`` (e.g. ``CHARACTER SET latin1``); drops it afterwards."""
    server_url = sa.make_url(_server_url(backend))
    name = f"modelreg_t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(server_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(sa.text(f"CREATE DATABASE {name} {options}"))
    except sa.exc.OperationalError as exc:
        admin.dispose()
        skip_or_fail(backend, f"server not reachable: {exc.orig}")
    try:
        yield server_url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            if backend == "postgres":
                connection.execute(sa.text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            else:
                connection.execute(sa.text(f"DROP DATABASE IF EXISTS {name}"))
        admin.dispose()


@dataclass(frozen=True)
class Backend:
    name: str
    url: str


BACKEND_PARAMS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
    pytest.param("mysql", id="mysql", marks=pytest.mark.mysql),
]


@pytest.fixture(params=BACKEND_PARAMS)
def backend(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backend]:
    """A fresh, empty database on each backend: SQLite file, PostgreSQL, MySQL/MariaDB."""
    name: str = request.param
    if name == "sqlite":
        path = tmp_path_factory.mktemp("db") / "test.db"
        yield Backend(name, f"sqlite:///{path}")
        return
    for url in _fresh_database(name):
        yield Backend(name, url)


@pytest.fixture
def database_url_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[str], str]]:
    """Makes fresh databases on demand: factory("sqlite" | "postgres" | "mysql") -> URL."""
    cleanups: list[Iterator[str]] = []

    def make(name: str) -> str:
        if name == "sqlite":
            return f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"
        generator = _fresh_database(name)
        url = next(generator)
        cleanups.append(generator)
        return url

    yield make
    for generator in cleanups:
        for _ in generator:
            pass


@pytest.fixture
def latin1_databases() -> Iterator[Callable[[], str]]:
    """Makes fresh MySQL/MariaDB databases whose default character set is latin1 (as a server of
    that default makes them), dropped afterwards."""
    with ExitStack() as databases:
        yield lambda: databases.enter_context(
            contextmanager(_fresh_database)("mysql", "CHARACTER SET latin1")
        )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class S3Server:
    """An S3-compatible server on loopback and the credentials that open it."""

    endpoint: str  # host:port, as the minio SDK takes it
    access_key: str
    secret_key: str


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """moto's S3-compatible server on 127.0.0.1, shared by the session."""
    try:
        from moto.server import ThreadedMotoServer
    except ImportError as exc:
        skip_or_fail("s3", f"moto[server] is not installed: {exc}")
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield S3Server(endpoint=f"127.0.0.1:{port}", access_key="testing", secret_key="testing")
    finally:
        server.stop()


@pytest.fixture
def s3_bucket(s3_server: S3Server) -> str:
    """A new empty bucket on the S3 server."""
    from minio import Minio

    client = Minio(
        s3_server.endpoint, access_key=s3_server.access_key, secret_key=s3_server.secret_key, secure=False
    )
    bucket = f"modelreg-{uuid.uuid4().hex[:12]}"
    client.make_bucket(bucket)
    return bucket


_passed_by_backend: dict[str, int] = {}


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when == "call" and report.passed:
        for backend in ("postgres", "mysql", "s3", "mlflow"):
            if backend in report.keywords:
                _passed_by_backend[backend] = _passed_by_backend.get(backend, 0) + 1


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    required = _required_backends()
    if not required or session.config.option.collectonly:
        return
    missing = sorted(b for b in required if _passed_by_backend.get(b, 0) == 0)
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    counts = ", ".join(f"{b}={_passed_by_backend.get(b, 0)}" for b in sorted(required))
    if reporter is not None:
        reporter.write_line(f"required backend tests passed: {counts}")
    if missing:
        if reporter is not None:
            reporter.write_line(
                f"FAILED: no {', '.join(missing)} test passed, but {REQUIRED_ENV} requires them"
            )
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
