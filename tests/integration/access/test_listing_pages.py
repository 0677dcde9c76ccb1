"""ListUsers and ListTokens answer pages, by rows and by bytes, through both real servers: 180
users of 100 groups with long names (~9 MB, past the 8 MiB message limit in one answer) and 5,000
tokens of a long-named user (~10 MB) list whole, each row once, through the client and the CLI;
a page cut by bytes carries the token of the rest; a token that is not one the service wrote for
the same query is INVALID_PAGE_TOKEN."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path

import grpc
import pytest
from google.protobuf.message import Message

from modelreg.access.v1 import access_pb2 as pb
from modelreg.access.v1.access_pb2_grpc import AccessServiceStub
from modelreg.access_client import AccessClient
from modelreg.cli import main
from modelreg.exceptions import from_rpc_error
from modelreg_server.access.service import USERS_PAGE_MAX
from modelreg_server.bootstrap import MAX_MESSAGE_BYTES
from modelreg_server.pagination import RESPONSE_BYTE_BUDGET
from modelreg_server.settings import AuthSettings
from tests.conftest import BACKEND_PARAMS, Backend
from tests.servers import running_services

from .conftest import BOOTSTRAP, SecuredServices

# The longest name: 128 letters (Deseret), 512 bytes of UTF-8.
LONG = "\U00010400" * 128
CROWD, GROUPS = 180, 100
TOKENS = 5000
ADMIN = [("authorization", f"Bearer {BOOTSTRAP}")]


def _access_db(secured: SecuredServices) -> Path:
    return secured.services.artifact_root.parent / "auth.db"


@pytest.fixture(scope="module")
def crowd(secured: SecuredServices) -> list[str]:
    """The names of CROWD users of GROUPS groups of 128 letters each (503 bytes), made in the
    database: the rows CreateUser writes, thousands of times faster."""
    with sqlite3.connect(_access_db(secured)) as db:
        db.execute(
            f"WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {CROWD}) "
            "INSERT INTO users (name, admin, service, disabled, created_at, created_by) "
            "SELECT printf('crowd-%04d', i), 0, 0, 0, 0, 'admin' FROM n"
        )
        db.execute(
            f"WITH RECURSIVE g(j) AS (SELECT 1 UNION ALL SELECT j + 1 FROM g WHERE j < {GROUPS}) "
            "INSERT INTO user_groups (user_id, group_name) "
            "SELECT users.id, printf('%03d', g.j) || ? FROM users, g WHERE users.name LIKE 'crowd-%'",
            (LONG[3:],),
        )
    return [f"crowd-{i:04d}" for i in range(1, CROWD + 1)]


@pytest.fixture(scope="module")
def long_tokens(secured: SecuredServices) -> list[str]:
    """The ids of TOKENS tokens of the user named LONG, each with the longest description (250
    four-byte letters) and creator, made in the database like the users above."""
    secured.user_token(LONG)
    with sqlite3.connect(_access_db(secured)) as db:
        db.execute(
            f"WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {TOKENS}) "
            "INSERT INTO tokens (id, user_id, secret_hash, description, created_at, created_by) "
            "SELECT printf('%012x', i), users.id, printf('%064d', 0), ?, i, ? FROM n, users "
            "WHERE users.name = ?",
            ("\U00010400" * 250, LONG, LONG),
        )
    return [f"{i:012x}" for i in range(1, TOKENS + 1)]  # oldest first: created at 1, 2, ...


def _call(secured: SecuredServices, method: str, request: Message) -> Message:
    options = [("grpc.max_receive_message_length", MAX_MESSAGE_BYTES)]
    with grpc.insecure_channel(secured.services.registry, options=options) as channel:
        rpc: Callable[..., Message] = getattr(AccessServiceStub(channel), method)
        return rpc(request, metadata=ADMIN)


@pytest.fixture
def cli(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, secured: SecuredServices
) -> Callable[..., object]:
    """Runs `modelreg <argv> --json` as the admin against ``secured`` and returns what it printed."""
    monkeypatch.setenv("MODELREG_TOKEN", BOOTSTRAP)
    services = secured.services

    def run(*argv: str) -> object:
        code = main(
            ["--tracking-uri", services.tracking, "--registry-uri", services.registry, *argv, "--json"]
        )
        captured = capsys.readouterr()
        assert code == 0, captured.err
        return json.loads(captured.out)

    return run


def test_a_page_of_users_ends_by_bytes_with_the_token_of_the_rest(
    secured: SecuredServices, crowd: list[str]
) -> None:
    first = _call(secured, "ListUsers", pb.ListUsersRequest(page_size=USERS_PAGE_MAX))
    assert isinstance(first, pb.ListUsersResponse)
    rows, size = len(first.users), first.ByteSize()
    assert 0 < rows < CROWD and first.next_page_token, (rows, size)
    assert size <= RESPONSE_BYTE_BUDGET
    assert all(len(u.groups) == GROUPS for u in first.users if u.name.startswith("crowd-"))
    names = [u.name for u in first.users]
    token = first.next_page_token
    while token:
        page = _call(secured, "ListUsers", pb.ListUsersRequest(page_size=USERS_PAGE_MAX, page_token=token))
        assert isinstance(page, pb.ListUsersResponse) and page.ByteSize() <= RESPONSE_BYTE_BUDGET
        names += [u.name for u in page.users]
        token = page.next_page_token
    assert [n for n in names if n.startswith("crowd-")] == crowd


def test_the_client_and_the_cli_list_every_user_once(
    secured: SecuredServices, crowd: list[str], cli: Callable[..., object]
) -> None:
    with secured.access() as access:
        whole = [u.name for u in access.list_users()]
        assert [u.name for u in access.list_users(page_size=7)] == whole
    assert [n for n in whole if n.startswith("crowd-")] == crowd and len(set(whole)) == len(whole)

    listed = cli("users", "list")
    assert isinstance(listed, list) and [u["name"] for u in listed] == whole
    assert {len(u["groups"]) for u in listed if u["name"].startswith("crowd-")} == {GROUPS}


def test_the_client_and_the_cli_list_every_token_once(
    secured: SecuredServices, long_tokens: list[str], cli: Callable[..., object]
) -> None:
    with secured.access() as access:
        mine = [t.id for t in access.list_tokens(LONG)]
        assert mine[:TOKENS] == long_tokens and len(mine) == TOKENS + 1  # and user_token's own
        assert [t.id for t in access.list_tokens(LONG, page_size=333)] == mine
        everyone = [t.id for t in access.list_tokens(include_revoked=True)]
        assert set(mine) <= set(everyone) and len(set(everyone)) == len(everyone)

    listed = cli("tokens", "list", "--user", LONG)
    assert isinstance(listed, list) and [t["id"] for t in listed] == mine


@pytest.mark.parametrize("backend", BACKEND_PARAMS, indirect=True)
def test_pages_of_users_and_tokens_on_every_backend(backend: Backend, tmp_path: Path) -> None:
    auth = AuthSettings(enabled=True, database_url=backend.url, bootstrap_admin_token=BOOTSTRAP)
    with (
        running_services(tmp_path, auth) as services,
        AccessClient(services.registry, token=BOOTSTRAP) as admin,
    ):
        made = [admin.create_user(f"u{i:02d}", groups=[f"g{i}"]).name for i in range(12)]
        tokens = [admin.create_token(name).token.id for name in made[:4] for _ in range(3)]
        admin.revoke_token(tokens[0])
        # Paged or not, the same rows in the same order (tokens: by creation time, then id),
        # each once; the server's own service tokens are listed too.
        for listing, mine in (
            (lambda size: [u.name for u in admin.list_users(page_size=size)], made),
            (lambda size: [t.id for t in admin.list_tokens(include_revoked=True, page_size=size)], tokens),
            (lambda size: [t.id for t in admin.list_tokens(page_size=size)], tokens[1:]),
            (lambda size: [t.id for t in admin.list_tokens("u01", page_size=size)], tokens[3:6]),
        ):
            whole = listing(1000)
            assert listing(2) == listing(5) == whole
            assert sorted(r for r in whole if r in set(tokens) | set(made)) == sorted(mine)


def test_a_user_pages_through_their_own_tokens(secured: SecuredServices) -> None:
    with secured.access() as admin:
        admin.create_user("pager")
        made = [admin.create_token("pager", description=f"t{i}").token.id for i in range(12)]
    with secured.access(secured.user_token("pager")) as pager:
        listed = [t.id for t in pager.list_tokens(page_size=5)]
    assert listed[:12] == made and len(listed) == 13


def _refusal(secured: SecuredServices, method: str, request: Message) -> tuple[str, str, dict[str, str]]:
    with pytest.raises(grpc.RpcError) as refused:
        _call(secured, method, request)
    error = from_rpc_error(refused.value)
    return error.code, error.reason, error.metadata


@pytest.mark.parametrize("token", ["%%%", "bm90IGpzb24", "eyJvIjotMSwicSI6IngifQ==", "x" * 600])
def test_a_malformed_page_token_is_invalid_page_token(secured: SecuredServices, token: str) -> None:
    for method, request in (
        ("ListUsers", pb.ListUsersRequest(page_token=token)),
        ("ListTokens", pb.ListTokensRequest(page_token=token)),
    ):
        assert _refusal(secured, method, request) == (
            "INVALID_ARGUMENT",
            "INVALID_PAGE_TOKEN",
            {"field": "page_token"},
        )


def test_a_page_token_belongs_to_its_query(secured: SecuredServices) -> None:
    secured.user_token("paged-a")
    secured.user_token("paged-a")
    users = _call(secured, "ListUsers", pb.ListUsersRequest(page_size=1))
    tokens = _call(secured, "ListTokens", pb.ListTokensRequest(user="paged-a", page_size=1))
    assert isinstance(users, pb.ListUsersResponse) and isinstance(tokens, pb.ListTokensResponse)
    assert users.next_page_token and tokens.next_page_token
    for method, request in (
        ("ListTokens", pb.ListTokensRequest(page_token=users.next_page_token)),
        ("ListTokens", pb.ListTokensRequest(page_token=tokens.next_page_token)),  # every user's
        (
            "ListTokens",
            pb.ListTokensRequest(user="paged-a", include_revoked=True, page_token=tokens.next_page_token),
        ),
        ("ListUsers", pb.ListUsersRequest(page_token=tokens.next_page_token)),
    ):
        code, reason, _ = _refusal(secured, method, request)
        assert (code, reason) == ("INVALID_ARGUMENT", "INVALID_PAGE_TOKEN")
    code, reason, metadata = _refusal(secured, "ListUsers", pb.ListUsersRequest(page_size=-1))
    assert (code, reason, metadata) == ("INVALID_ARGUMENT", "INVALID_PAGE_SIZE", {"field": "page_size"})
