"""Both real servers in-process with access control on and no default level, the registry on the
backend under test (SQLite, PostgreSQL, MariaDB), and helpers to register versions from runs whose lineage
a gate evaluates."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import sqlalchemy as sa

import modelreg
from modelreg.access_client import AccessClient
from modelreg.entities import ModelVersion
from modelreg_server.access.policy import Level
from tests.conftest import Backend
from tests.integration.access.conftest import BOOTSTRAP, auth_settings
from tests.servers import running_registry, running_tracking

SIGNED_MLMODEL = 'flavors:\n  python_function: {}\nsignature:\n  inputs: \'[{"type": "double"}]\'\n'
UNSIGNED_MLMODEL = "flavors:\n  python_function: {}\n"


@dataclass
class Registry:
    """The servers, an admin client, and a client per user of a level on every test model."""

    tracking: str
    registry: str
    database_url: str
    root: Path
    clients: dict[str, modelreg.Client] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)
    experiment_id: str = ""

    def client(self, user: str) -> modelreg.Client:
        """``admin``, ``anonymous`` (no token), or a user created on first use (manage, manage2,
        edit, read, none)."""
        if user not in self.clients:
            token = "" if user == "anonymous" else BOOTSTRAP
            if user not in ("admin", "anonymous"):
                with AccessClient(self.registry, token=BOOTSTRAP) as access:
                    access.create_user(user)
                    token = access.create_token(user).secret
            self.clients[user] = modelreg.Client(self.tracking, self.registry, token=token)
            self.tokens[user] = token
        return self.clients[user]

    def model(self) -> str:
        """A new model on which manage and manage2 hold MANAGE, edit EDIT and read READ."""
        name = f"gated-{uuid.uuid4().hex[:8]}"
        admin = self.client("admin")
        admin.create_registered_model(name)
        for user, level in (("manage", "MANAGE"), ("manage2", "MANAGE"), ("edit", "EDIT"), ("read", "READ")):
            self.client(user)
            admin.set_registered_model_permission(name, level, user=user)
        return name

    def version(
        self,
        name: str,
        rmse: float | None = None,
        *,
        signed: bool = True,
        run_tags: dict[str, str] | None = None,
        tags: dict[str, str] | None = None,
        mlmodel: str | None = None,
    ) -> ModelVersion:
        """A version registered (by the admin) from a new run with metric ``rmse`` and a model
        directory holding an MLmodel (with a signature when ``signed``, or ``mlmodel`` when given)
        and a weights file."""
        admin = self.client("admin")
        if not self.experiment_id:
            self.experiment_id = admin.create_experiment(f"gates-{uuid.uuid4().hex[:8]}")
        run_id = admin.create_run(self.experiment_id).info.run_id
        if rmse is not None:
            admin.log_metric(run_id, "rmse", rmse)
        for key, value in (run_tags or {}).items():
            admin.set_tag(run_id, key, value)
        local = self.root / uuid.uuid4().hex
        local.mkdir()
        (local / "MLmodel").write_text(mlmodel or (SIGNED_MLMODEL if signed else UNSIGNED_MLMODEL))
        (local / "model.bin").write_bytes(b"weights")
        admin.log_artifacts(run_id, str(local), "model")
        return admin.create_model_version(name, f"runs:/{run_id}/model", run_id=run_id, tags=tags)

    def expire_requests(self) -> None:
        """Moves every approval request's expiry into the past, as 7 days passing would."""
        engine = sa.create_engine(self.database_url)
        with engine.begin() as connection:
            connection.execute(sa.text("UPDATE approval_requests SET expires_time = 1"))
        engine.dispose()


@pytest.fixture
def gated(backend: Backend, tmp_path: Path) -> Iterator[Registry]:
    auth = auth_settings(tmp_path, Level.NONE)
    with ExitStack() as stack:
        tracking, _ = stack.enter_context(running_tracking(tmp_path, auth=auth))
        registry = stack.enter_context(running_registry(tmp_path, tracking, backend.url, auth=auth))
        services = Registry(tracking, registry, backend.url, tmp_path)
        try:
            yield services
        finally:
            for client in services.clients.values():
                client.close()
