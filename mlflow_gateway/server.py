"""Serving the endpoint with uvicorn: ``modelreg mlflow-server`` and ``modelreg server --mlflow-port``."""

from __future__ import annotations

import signal
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import uvicorn
from starlette.types import ASGIApp

from mlflow_gateway.app import create_app
from mlflow_gateway.endpoint import Services
from mlflow_gateway.settings import GatewaySettings

Wrap = Callable[[ASGIApp], ASGIApp]


def uvicorn_config(
    settings: GatewaySettings, services: Services | None = None, wrap: Wrap | None = None
) -> uvicorn.Config:
    """``wrap``: ASGI middleware around the app (tests record the endpoints a client calls)."""
    app: ASGIApp = create_app(settings, services)
    return uvicorn.Config(
        wrap(app) if wrap else app,
        host=settings.host,
        port=settings.port,
        ssl_certfile=settings.tls_cert_file,
        ssl_keyfile=settings.tls_key_file,
        log_level="warning",
        # MLflow's client keeps connections open between calls; uvicorn's 5 s default is short.
        timeout_keep_alive=30,
        server_header=False,
        # Beyond this many connections and tasks uvicorn answers 503, which MLflow's client retries.
        limit_concurrency=1000,
        lifespan="on",
    )


class _Server(uvicorn.Server):
    """uvicorn's server, telling when it listens, and stopping on SIGINT/SIGTERM with exit code 0.

    uvicorn re-raises the signal that stopped it once it has finished, so a stopped endpoint would
    die of SIGTERM (or a KeyboardInterrupt traceback): a requested stop is a clean exit here.
    """

    def __init__(self, config: uvicorn.Config, on_listening: Callable[[str], None] | None) -> None:
        super().__init__(config)
        self._on_listening = on_listening

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started and self._on_listening is not None:
            self._on_listening(self.url())

    def url(self) -> str:
        host, port = self.servers[0].sockets[0].getsockname()[:2]
        host = f"[{host}]" if ":" in host else host
        return f"{'https' if self.config.ssl_certfile else 'http'}://{host}:{port}"

    @contextmanager
    def capture_signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def serve(settings: GatewaySettings, on_listening: Callable[[str], None] | None = None) -> None:
    """Serves until SIGINT/SIGTERM, finishing the requests under way. ``on_listening`` is called
    with the endpoint's URL once its socket listens (after the app's start-up). A port it cannot
    listen on ends the process with exit code 3 (uvicorn's start-up failure) after logging why."""
    _Server(uvicorn_config(settings), on_listening).run()


@contextmanager
def running_in_thread(
    settings: GatewaySettings, services: Services | None = None, wrap: Wrap | None = None
) -> Iterator[str]:
    """The endpoint on a thread of this process (port 0: a free one); yields its base URL."""
    server = _Server(uvicorn_config(settings, services, wrap), None)
    thread = threading.Thread(target=server.run, name="mlflow-endpoint", daemon=True)
    thread.start()
    try:
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError("the MLflow endpoint failed to start")
            threading.Event().wait(0.01)
        yield server.url()
    finally:
        server.should_exit = True
        thread.join(timeout=10)
