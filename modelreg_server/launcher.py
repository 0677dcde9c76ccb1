"""Starting both services, and the MLflow REST endpoint beside them, as child processes with the
embedded defaults (``modelreg server``).

Embedded defaults, under a data directory (``./.modelreg`` unless told otherwise):
``tracking.db``, ``registry.db`` and, with MODELREG_AUTH=on, ``auth.db`` (SQLite, the access
database both services share) and ``artifacts/`` (file://). A variable the caller
already set in the environment (``MODELREG_TRACKING_DATABASE_URL``, ``MODELREG_ARTIFACT_ROOT``, ...)
wins over the default, so the same command can serve from PostgreSQL or S3.

With MODELREG_TLS_CERT_FILE / MODELREG_TLS_KEY_FILE set (MODELREG_TLS_CLIENT_CA_FILE for mTLS), both
services serve TLS and their targets are ``grpcs://``: the launcher's health checks and the
registry's channel to tracking trust MODELREG_CA_FILE (default: the system roots) and present
MODELREG_CLIENT_CERT_FILE / MODELREG_CLIENT_KEY_FILE, the same variables a client reads.

Both ports are checked before anything starts: one another process listens on is refused at once
(:class:`PortUnavailable`), so the launcher never waits on, or reports, a server that is not its
own. The tracking service starts first; the registry, which asks tracking about runs, starts once
tracking reports SERVING on grpc.health.v1 from a socket the child itself listens on (on Linux,
where /proc tells; elsewhere the port check alone guards against a port taken in between).

Each child runs in its own session, so a Ctrl-C in the terminal reaches only the launcher, which
then stops the registry before tracking with SIGTERM (the services finish in-flight calls) and kills
a child that does not exit within the grace period. The services also never outlive the launcher,
however it dies (SIGKILL, OOM killer): each child runs its service through :func:`run_child`, which
holds the read end of a pipe whose only write end the launcher keeps open, and SIGTERMs its own
process when the read ends with end of file. A pipe rather than Linux's PR_SET_PDEATHSIG: that
needs ``preexec_fn``, which is unsafe once the launcher has threads (gRPC's, from the health checks,
before the registry starts), fires on the death of the spawning thread rather than the process, and
exists on Linux only; a pipe's end of file comes from the kernel on every POSIX system, and cannot
be missed by a child that starts after the launcher died (its first read returns at once).

The MLflow REST endpoint (``mlflow_gateway``, when :attr:`LaunchConfig.mlflow_port` is set) is a
third child, started last and stopped first, in the same way: its port is checked with the others,
it holds the same lifeline, and it counts as up once ``GET /health`` answers from a socket the child
itself listens on. It calls both services at the targets above (MODELREG_CA_FILE and the client
certificate variables when they serve TLS) and serves HTTPS itself with
MODELREG_MLFLOW_TLS_CERT_FILE / MODELREG_MLFLOW_TLS_KEY_FILE.
"""

from __future__ import annotations

import os
import runpy
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO

from modelreg.config import TlsConfig
from modelreg_server.bootstrap import port_unavailable
from modelreg_server.healthcheck import is_serving

DEFAULT_DATA_DIR = Path(".modelreg")
DEFAULT_TRACKING_PORT = 50051
DEFAULT_REGISTRY_PORT = 50052
DEFAULT_MLFLOW_PORT = 5000
TRACKING_SERVICE = "modelreg.tracking.v1.TrackingService"
REGISTRY_SERVICE = "modelreg.registry.v1.RegistryService"
# This module, which each child runs first (run_child): spelt out, since as __main__ it has no name.
CHILD_RUNNER = "modelreg_server.launcher"


class LaunchError(RuntimeError):
    """A service did not come up: it exited, or did not report SERVING in time."""


class PortUnavailable(LaunchError):
    """``service``'s port cannot be listened on: another process has it (or the host is wrong)."""

    def __init__(self, service: str, host: str, port: int, why: str) -> None:
        super().__init__(f"the {service} service cannot listen on {host}:{port}: {why}")
        self.service = service


def listens_on(pid: int, port: int) -> bool:
    """Whether process ``pid`` holds a TCP socket listening on ``port``. Read from /proc; where
    there is none (not Linux) this cannot be told and the answer is True."""
    if not Path("/proc/net/tcp").exists():
        return True
    sockets = set()
    try:
        descriptors = os.listdir(f"/proc/{pid}/fd")
    except OSError:  # the process has exited
        return False
    for fd in descriptors:
        try:
            sockets.add(os.readlink(f"/proc/{pid}/fd/{fd}"))
        except OSError:  # closed since listed
            continue
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:  # no IPv6
            continue
        # Columns: sl local_address rem_address st ... inode; local_address is HEXADDR:HEXPORT, st 0A LISTEN.
        for fields in (row.split() for row in rows):
            listening = fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port
            if listening and f"socket:[{fields[9]}]" in sockets:
                return True
    return False


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class LaunchConfig:
    data_dir: Path = DEFAULT_DATA_DIR
    tracking_port: int = DEFAULT_TRACKING_PORT
    registry_port: int = DEFAULT_REGISTRY_PORT
    # The MLflow REST endpoint's port; None: no endpoint.
    mlflow_port: int | None = None
    # Where clients reach the services; the services themselves listen as their settings say.
    host: str = "127.0.0.1"
    # None: the children write to this process's stdout/stderr; else one log file each in it.
    log_dir: Path | None = None
    startup_timeout: float = 60.0
    stop_grace: float = 10.0
    base_env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))

    @property
    def tls(self) -> bool:
        """Whether the services serve TLS (a half-set pair stops them, naming the missing one)."""
        return any(self.base_env.get(name) for name in ("MODELREG_TLS_CERT_FILE", "MODELREG_TLS_KEY_FILE"))

    @property
    def client_tls(self) -> TlsConfig:
        """What the launcher and the registry present to a TLS service: the client's variables."""
        return TlsConfig.from_env(self.base_env)

    def listen_addresses(self) -> dict[str, tuple[str, int]]:
        """Where each service will listen: its host setting (loopback unless the environment says
        otherwise) and its port."""
        addresses = {
            "tracking": (self.tracking_env()["MODELREG_TRACKING_HOST"], self.tracking_port),
            "registry": (self.registry_env()["MODELREG_REGISTRY_HOST"], self.registry_port),
        }
        if self.mlflow_port is not None:
            addresses["mlflow"] = (self.mlflow_env()["MODELREG_MLFLOW_HOST"], self.mlflow_port)
        return addresses

    @property
    def tracking_target(self) -> str:
        return f"{'grpcs://' if self.tls else ''}{self.host}:{self.tracking_port}"

    @property
    def registry_target(self) -> str:
        return f"{'grpcs://' if self.tls else ''}{self.host}:{self.registry_port}"

    @property
    def mlflow_url(self) -> str:
        """What ``MLFLOW_TRACKING_URI`` names to reach the endpoint."""
        https = self.base_env.get("MODELREG_MLFLOW_TLS_CERT_FILE")
        return f"{'https' if https else 'http'}://{self.host}:{self.mlflow_port}"

    def tracking_env(self) -> dict[str, str]:
        data = self.data_dir.resolve()
        defaults = {
            "MODELREG_TRACKING_DATABASE_URL": f"sqlite:///{data / 'tracking.db'}",
            "MODELREG_ARTIFACT_ROOT": (data / "artifacts").as_uri(),
            "MODELREG_AUTH_DATABASE_URL": f"sqlite:///{data / 'auth.db'}",
            "MODELREG_AUTO_MIGRATE": "true",
            # Embedded means one machine: listen on loopback unless told otherwise.
            "MODELREG_TRACKING_HOST": self.host,
        }
        # The port is what this launcher waits on, so it is not left to the environment.
        return {**defaults, **self.base_env, "MODELREG_TRACKING_PORT": str(self.tracking_port)}

    def registry_env(self) -> dict[str, str]:
        data = self.data_dir.resolve()
        defaults = {
            "MODELREG_REGISTRY_DATABASE_URL": f"sqlite:///{data / 'registry.db'}",
            "MODELREG_AUTH_DATABASE_URL": f"sqlite:///{data / 'auth.db'}",
            "MODELREG_AUTO_MIGRATE": "true",
            "MODELREG_REGISTRY_HOST": self.host,
        }
        if self.tls:
            tls = self.client_tls
            tracking_tls = {
                "MODELREG_TRACKING_CA_FILE": tls.ca_file,
                "MODELREG_TRACKING_CLIENT_CERT_FILE": tls.client_cert_file,
                "MODELREG_TRACKING_CLIENT_KEY_FILE": tls.client_key_file,
            }
            defaults.update({name: value for name, value in tracking_tls.items() if value})
        return {
            **defaults,
            **self.base_env,
            "MODELREG_REGISTRY_PORT": str(self.registry_port),
            "MODELREG_TRACKING_TARGET": self.tracking_target,
        }

    def mlflow_env(self) -> dict[str, str]:
        # The endpoint's own TLS files and host come from the environment; the port and the
        # services it calls are this launcher's.
        return {
            "MODELREG_MLFLOW_HOST": self.host,
            **self.base_env,
            "MODELREG_MLFLOW_PORT": str(self.mlflow_port),
            "MODELREG_TRACKING_URI": self.tracking_target,
            "MODELREG_REGISTRY_URI": self.registry_target,
        }


def service_command(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *args]


def answers_health(url: str) -> bool:
    """Whether the MLflow endpoint at ``url`` answers ``GET /health`` with 200 OK. Its certificate
    is not checked: this only asks whether it is up, sends nothing secret, and whose socket
    answers is told by :func:`listens_on`; a certificate the caller's clients are to trust may
    come from any CA."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=1.0, context=context) as response:
            return bool(response.status == 200 and response.read() == b"OK")
    except (OSError, urllib.error.URLError, ValueError):
        return False


def run_child(argv: Sequence[str]) -> None:
    """``python -m modelreg_server.launcher FD MODULE ARG...``: runs ``python -m MODULE ARG...`` in
    this process and sends it SIGTERM (a graceful stop) once the launcher's pipe, read on FD, ends."""
    fd, module, *args = argv
    threading.Thread(target=_stop_at_end_of_file, args=(int(fd),), name="launcher-watch", daemon=True).start()
    sys.argv = [module, *args]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


def _stop_at_end_of_file(fd: int) -> None:
    # The launcher never writes: a read returns only at end of file, when its write end is closed.
    while os.read(fd, 1):
        pass
    os.kill(os.getpid(), signal.SIGTERM)


class Services:
    """The two services (and the MLflow endpoint) as child processes; a context manager that stops
    them on exit."""

    def __init__(self, config: LaunchConfig) -> None:
        self.config = config
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self._logs: list[IO[bytes]] = []
        # The children's lifeline (see the module docstring): they hold the read end, this process
        # the write end, which the kernel closes when this process dies, however it dies.
        self._lifeline: tuple[int, int] | None = None

    def __enter__(self) -> Services:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def start(self) -> None:
        """Starts both services, then the endpoint; PortUnavailable, before anything starts, when a
        port is taken."""
        for name, (host, port) in self.config.listen_addresses().items():
            why = port_unavailable(host, port)
            if why is not None:
                raise PortUnavailable(name, host, port, why)
        self.config.data_dir.mkdir(parents=True, exist_ok=True)
        self._lifeline = os.pipe()
        try:
            self._spawn("tracking", ["tracking_service", "serve"], self.config.tracking_env())
            self._wait_serving("tracking", self.config.tracking_target, TRACKING_SERVICE)
            self._spawn("registry", ["registry_service", "serve"], self.config.registry_env())
            self._wait_serving("registry", self.config.registry_target, REGISTRY_SERVICE)
            if self.config.mlflow_port is not None:
                self._spawn("mlflow", ["mlflow_gateway"], self.config.mlflow_env())
                url = self.config.mlflow_url
                self._wait_ready("mlflow", lambda: answers_health(url), f"answer GET {url}/health")
        except BaseException:
            self.stop()
            raise

    def _spawn(self, name: str, module_and_args: list[str], env: dict[str, str]) -> None:
        out: IO[bytes] | None = None
        if self.config.log_dir is not None:
            self.config.log_dir.mkdir(parents=True, exist_ok=True)
            out = (self.config.log_dir / f"{name}.log").open("ab")
            self._logs.append(out)
        assert self._lifeline is not None
        read_end = self._lifeline[0]
        self.processes[name] = subprocess.Popen(
            service_command(CHILD_RUNNER, str(read_end), *module_and_args),
            pass_fds=(read_end,),
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT if out is not None else None,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )

    def _wait_serving(self, name: str, target: str, service: str) -> None:
        tls = self.config.client_tls
        self._wait_ready(
            name,
            lambda: is_serving(target, service, timeout=1.0, tls=tls),
            f"report SERVING on {target}",
        )

    def _wait_ready(self, name: str, ready: Callable[[], bool], what: str) -> None:
        """Until ``ready()`` holds with the child ``name`` listening on its port itself."""
        deadline = time.monotonic() + self.config.startup_timeout
        process = self.processes[name]
        host, port = self.config.listen_addresses()[name]
        while time.monotonic() < deadline:
            if process.poll() is not None:
                why = port_unavailable(host, port)
                if why is not None:  # taken after the check, before the child could bind it
                    raise PortUnavailable(name, host, port, why)
                raise LaunchError(
                    f"{name} service exited with code {process.returncode} during startup{self._log_hint(name)}"
                )
            try:
                # An answer counts only from the child's own socket: whoever else holds the port
                # answers too until the child, failing to bind it, exits.
                if ready() and listens_on(process.pid, port):
                    return
            except ValueError as exc:  # an unreadable MODELREG_CA_FILE, a certificate without its key
                raise LaunchError(str(exc)) from None
            time.sleep(0.1)
        raise LaunchError(
            f"{name} service did not {what} within {self.config.startup_timeout:.0f}s{self._log_hint(name)}"
        )

    def _log_hint(self, name: str) -> str:
        if self.config.log_dir is None:
            return ""
        return f" (log: {self.config.log_dir / f'{name}.log'})"

    def exited(self) -> str | None:
        """The name of a child that has exited on its own, if any."""
        return next((name for name, p in self.processes.items() if p.poll() is not None), None)

    def stop(self) -> dict[str, int]:
        """Stops the endpoint, the registry, then tracking; returns each child's exit code."""
        codes: dict[str, int] = {}
        for name in ("mlflow", "registry", "tracking"):
            process = self.processes.pop(name, None)
            if process is None:
                continue
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(self.config.stop_grace)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            codes[name] = process.returncode
        for log in self._logs:
            log.close()
        self._logs.clear()
        if self._lifeline is not None:
            for fd in self._lifeline:
                os.close(fd)
            self._lifeline = None
        return codes


if __name__ == "__main__":
    run_child(sys.argv[1:])
