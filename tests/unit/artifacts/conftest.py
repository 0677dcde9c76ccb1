"""A store under test plus an inventory of everything it holds, for the file and S3 backends."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import boto3  # type: ignore[import-untyped]
import pytest

from tracking_service.artifacts import ArtifactStore, S3Options, open_artifact_store
from tracking_service.artifacts.base import STAGING_DIR
from tracking_service.artifacts.file import LOCK_NAME


class S3Server(Protocol):  # the s3_server fixture's value (tests/conftest.py)
    @property
    def endpoint(self) -> str: ...
    @property
    def access_key(self) -> str: ...
    @property
    def secret_key(self) -> str: ...


@dataclass(frozen=True)
class Target:
    store: ArtifactStore
    root: str  # URI of the store's root, no trailing slash
    inventory: Callable[[], set[str]]  # every name under the root, staging and multipart included

    def uri(self, name: str) -> str:
        return f"{self.root}/{name}"


def s3_options(server: S3Server) -> S3Options:
    return S3Options(server.endpoint, server.access_key, server.secret_key)


def boto_client(server: S3Server) -> Any:
    """boto3 lists what the minio SDK does not (multipart uploads)."""
    return boto3.client(
        "s3",
        endpoint_url=f"http://{server.endpoint}",
        aws_access_key_id=server.access_key,
        aws_secret_access_key=server.secret_key,
        region_name="us-east-1",
    )


def s3_inventory(server: S3Server, bucket: str) -> Callable[[], set[str]]:
    client = boto_client(server)

    def inventory() -> set[str]:
        objects = client.list_objects_v2(Bucket=bucket).get("Contents", [])
        uploads = client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
        return {o["Key"] for o in objects} | {f"multipart:{u['Key']}" for u in uploads}

    return inventory


def file_target(root: Path) -> Target:
    def inventory() -> set[str]:
        # A live process's staging directory holds its lock file: not content.
        names = {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}
        return {n for n in names if not (n.startswith(f"{STAGING_DIR}/") and n.endswith(f"/{LOCK_NAME}"))}

    return Target(open_artifact_store(root.as_uri(), None), root.as_uri(), inventory)


@pytest.fixture(params=["file", pytest.param("s3", marks=pytest.mark.s3)])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Target:
    if request.param == "file":
        return file_target(tmp_path / "artifacts")
    server: S3Server = request.getfixturevalue("s3_server")
    bucket: str = request.getfixturevalue("s3_bucket")
    root = f"s3://{bucket}"
    return Target(open_artifact_store(root, s3_options(server)), root, s3_inventory(server, bucket))
