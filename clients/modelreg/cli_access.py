"""The access-control commands of ``modelreg``: ``whoami``, ``users``, ``tokens``, ``permissions``,
``models protect`` and ``access events``.

Users, tokens, ``whoami`` and the audit talk to the AccessService of the registry target
(``--registry-uri`` / ``MODELREG_REGISTRY_URI``); grants on an experiment go to the tracking
service and grants and protection of a registered model to the registry, through ``Client``.
Output, errors and exit codes follow :mod:`modelreg.cli`.
"""

from __future__ import annotations

import argparse
import re
from typing import Any, Protocol, cast

from modelreg import entities as e
from modelreg.access_client import AccessClient
from modelreg.cli import (
    EXIT_OK,
    MODEL_HELP,
    CommandTree,
    Output,
    UsageError,
    _client,
    _time,
    positive_int,
    target,
)

LEVELS = ("READ", "EDIT", "MANAGE")

# Seconds per unit of an --expires-in duration; a year is 365 days.
_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "y": 365 * 86400}
_DURATION = re.compile(r"([0-9]+)([smhdy])")


def parse_duration(text: str) -> int:
    """``90s``, ``15m``, ``12h``, ``30d``, ``1y`` → seconds; ValueError for anything else (a bare
    number, another unit, zero, a fraction)."""
    match = _DURATION.fullmatch(text)
    if match is None or int(match.group(1)) == 0:
        raise ValueError(
            f"{text!r} is not a duration: a positive whole number and s, m, h, d or y (e.g. 30d)"
        )
    return int(match.group(1)) * _DURATION_UNITS[match.group(2)]


def _access(args: argparse.Namespace) -> AccessClient:
    return AccessClient(target(args, "registry"))


class PermissionsApi(Protocol):
    """The grant and protection methods of :class:`modelreg.Client` the commands call."""

    def set_experiment_permission(
        self, experiment_id: str, level: str, *, user: str = "", group: str = ""
    ) -> e.Permission: ...

    def delete_experiment_permission(
        self, experiment_id: str, *, user: str = "", group: str = ""
    ) -> None: ...

    def list_experiment_permissions(
        self, experiment_id: str
    ) -> tuple[list[e.Permission], list[e.PermissionEvent]]: ...

    def set_registered_model_permission(
        self, name: str, level: str, *, user: str = "", group: str = ""
    ) -> e.Permission: ...

    def delete_registered_model_permission(self, name: str, *, user: str = "", group: str = "") -> None: ...

    def list_registered_model_permissions(
        self, name: str
    ) -> tuple[list[e.Permission], e.ModelProtection, list[e.PermissionEvent]]: ...

    def set_registered_model_protection(
        self, name: str, *, production: bool = True, aliases: tuple[str, ...] = ()
    ) -> e.ModelProtection: ...


def _permissions(args: argparse.Namespace) -> PermissionsApi:
    return cast(PermissionsApi, _client(args))


# whoami, users, tokens, the audit


def cmd_whoami(args: argparse.Namespace, out: Output) -> int:
    with _access(args) as access:
        me = access.whoami()
    if out.as_json:
        out.json(me)
    else:
        out.fields(
            [
                ("name", me.name),
                ("groups", me.groups),
                ("admin", me.admin),
                ("service", me.service),
                ("authenticated_by", me.authenticated_by),
            ]
        )
    return EXIT_OK


def _show_user(out: Output, user: e.User) -> None:
    if out.as_json:
        out.json(user)
        return
    out.fields(
        [
            ("name", user.name),
            ("admin", user.admin),
            ("service", user.service),
            ("disabled", user.disabled),
            ("groups", user.groups),
            ("created", _time(user.created_at)),
            ("created_by", user.created_by),
        ]
    )


def cmd_users_create(args: argparse.Namespace, out: Output) -> int:
    with _access(args) as access:
        user = access.create_user(args.name, admin=args.admin, service=args.service, groups=args.group or ())
    _show_user(out, user)
    return EXIT_OK


def cmd_users_list(args: argparse.Namespace, out: Output) -> int:
    with _access(args) as access:
        users = access.list_users()
    if out.as_json:
        out.json(users)
    else:
        out.table(
            ["NAME", "ADMIN", "SERVICE", "DISABLED", "GROUPS", "CREATED", "CREATED_BY"],
            [
                (u.name, u.admin, u.service, u.disabled, u.groups, _time(u.created_at), u.created_by)
                for u in users
            ],
        )
    return EXIT_OK


def cmd_users_update(args: argparse.Namespace, out: Output) -> int:
    if args.admin is None and args.disabled is None and args.groups is None:
        raise UsageError("NOTHING_TO_CHANGE", "give --admin/--no-admin, --disable/--enable or --groups")
    with _access(args) as access:
        user = access.update_user(args.name, admin=args.admin, disabled=args.disabled, groups=args.groups)
    _show_user(out, user)
    return EXIT_OK


def _token_record(token: e.Token, secret: str | None = None) -> dict[str, Any]:
    record: dict[str, Any] = {
        "id": token.id,
        "user": token.user,
        "description": token.description,
        "created_at": token.created_at,
        "created_by": token.created_by,
        "expires_at": token.expires_at,
        "revoked_at": token.revoked_at,
    }
    if secret is not None:
        record["secret"] = secret
    return record


def cmd_tokens_create(args: argparse.Namespace, out: Output) -> int:
    expires_in = 0
    if args.expires_in is not None:
        try:
            expires_in = parse_duration(args.expires_in)
        except ValueError as exc:
            raise UsageError("INVALID_DURATION", f"--expires-in: {exc}") from None
    with _access(args) as access:
        created = access.create_token(args.user, description=args.description, expires_in_seconds=expires_in)
    if out.as_json:
        out.json(_token_record(created.token, created.secret))
    else:
        # Only the secret, so `export MODELREG_TOKEN=$(modelreg tokens create)` works.
        out.line(created.secret)
    return EXIT_OK


def cmd_tokens_list(args: argparse.Namespace, out: Output) -> int:
    with _access(args) as access:
        tokens = access.list_tokens(args.user, include_revoked=args.all)
    if out.as_json:
        out.json([_token_record(t) for t in tokens])
    else:
        out.table(
            ["ID", "USER", "CREATED", "CREATED_BY", "EXPIRES", "REVOKED", "DESCRIPTION"],
            [
                (
                    t.id,
                    t.user,
                    _time(t.created_at),
                    t.created_by,
                    _time(t.expires_at) if t.expires_at else "never",
                    _time(t.revoked_at),
                    t.description,
                )
                for t in tokens
            ],
        )
    return EXIT_OK


def cmd_tokens_revoke(args: argparse.Namespace, out: Output) -> int:
    with _access(args) as access:
        token = access.revoke_token(args.id)
    if out.as_json:
        out.json(_token_record(token))
    else:
        out.line(f"token {token.id} of {token.user} revoked")
    return EXIT_OK


def cmd_access_events(args: argparse.Namespace, out: Output) -> int:
    with _access(args) as access:
        events = list(access.list_access_events(max_results=args.max_results))
    if out.as_json:
        out.json(events)
    else:
        out.table(
            ["TIME", "ACTOR", "ACTION", "TARGET", "DETAIL"],
            [(_time(v.time), v.actor, v.action, v.target, v.detail or "-") for v in events],
        )
    return EXIT_OK


# Grants and protection


def _resource(args: argparse.Namespace) -> str:
    return f"experiment {args.experiment}" if args.experiment is not None else f"model {args.model}"


def _principal(args: argparse.Namespace) -> str:
    return f"user {args.user}" if args.user is not None else f"group {args.group}"


def _who(args: argparse.Namespace) -> dict[str, str]:
    return {"user": args.user or "", "group": args.group or ""}


def cmd_permissions_set(args: argparse.Namespace, out: Output) -> int:
    api = _permissions(args)
    if args.experiment is not None:
        granted = api.set_experiment_permission(args.experiment, args.level, **_who(args))
    else:
        granted = api.set_registered_model_permission(args.model, args.level, **_who(args))
    if out.as_json:
        out.json(granted)
    else:
        out.line(f"{_principal(args)} has {granted.level} on {_resource(args)}")
    return EXIT_OK


def cmd_permissions_delete(args: argparse.Namespace, out: Output) -> int:
    api = _permissions(args)
    if args.experiment is not None:
        api.delete_experiment_permission(args.experiment, **_who(args))
    else:
        api.delete_registered_model_permission(args.model, **_who(args))
    if out.as_json:
        key = "experiment_id" if args.experiment is not None else "name"
        out.json({key: args.experiment or args.model, **_who(args), "deleted": True})
    else:
        out.line(f"grant of {_principal(args)} on {_resource(args)} deleted")
    return EXIT_OK


def cmd_permissions_list(args: argparse.Namespace, out: Output) -> int:
    api = _permissions(args)
    protection: e.ModelProtection | None = None
    if args.experiment is not None:
        grants, events = api.list_experiment_permissions(args.experiment)
    else:
        grants, protection, events = api.list_registered_model_permissions(args.model)
    if out.as_json:
        document: dict[str, Any] = {"permissions": grants}
        if protection is not None:
            document["protection"] = protection
        if args.history:
            document["history"] = events
        out.json(document)
        return EXIT_OK
    out.table(
        ["USER", "GROUP", "LEVEL", "GRANTED_BY", "GRANTED"],
        [(p.user or "-", p.group or "-", p.level, p.granted_by, _time(p.granted_at)) for p in grants],
    )
    if protection is not None:
        out.line()
        _protection_fields(out, protection)
    if args.history:
        out.line()
        out.table(
            ["TIME", "ACTOR", "ACTION", "USER", "GROUP", "LEVEL"],
            [
                (_time(v.time), v.actor, v.action, v.user or "-", v.group or "-", v.level or "-")
                for v in events
            ],
        )
    return EXIT_OK


def _protection_fields(out: Output, protection: e.ModelProtection) -> None:
    out.fields(
        [
            ("protected production", "yes" if protection.production else "no"),
            ("protected aliases", protection.aliases),
        ]
    )


def cmd_models_protect(args: argparse.Namespace, out: Output) -> int:
    protection = _permissions(args).set_registered_model_protection(
        args.name, production=not args.no_production, aliases=tuple(args.alias or ())
    )
    if out.as_json:
        out.json({"name": args.name, "production": protection.production, "aliases": protection.aliases})
    else:
        _protection_fields(out, protection)
    return EXIT_OK


# Parser


def _target_options(parser: argparse.ArgumentParser) -> None:
    """``(--experiment ID | --model NAME) (--user U | --group G)``, one of each required."""
    resource = parser.add_mutually_exclusive_group(required=True)
    resource.add_argument("--experiment", metavar="ID", help="an experiment, by id")
    resource.add_argument("--model", metavar="NAME", help="a registered model, by name")


def _principal_options(parser: argparse.ArgumentParser) -> None:
    principal = parser.add_mutually_exclusive_group(required=True)
    principal.add_argument("--user", metavar="U", help="the user the grant is for")
    principal.add_argument("--group", metavar="G", help="the group the grant is for")


def add_access_commands(tree: CommandTree, models: Any) -> None:
    """Adds the access-control commands; ``models`` is the ``models`` group, which gets ``protect``."""
    leaf, group = tree.leaf, tree.group

    leaf(tree.commands, "whoami", cmd_whoami, "who the services take you to be")

    users = group("users", "users (admins only)")
    create = leaf(users, "create", cmd_users_create, "create a user")
    create.add_argument("name", help="1-128 letters, digits and . _ @ + / : = -")
    create.add_argument("--admin", action="store_true", help="may manage users and everything else")
    create.add_argument("--service", action="store_true", help="a service identity, may act for others")
    create.add_argument("--group", action="append", metavar="G", help="a group to be in; repeatable")
    leaf(users, "list", cmd_users_list, "list users")
    update = leaf(users, "update", cmd_users_update, "change a user's admin flag, groups or disabled flag")
    update.add_argument("name", help="the user to change")
    admin = update.add_mutually_exclusive_group()
    admin.add_argument(
        "--admin", dest="admin", action="store_const", const=True, default=None, help="make an admin"
    )
    admin.add_argument(
        "--no-admin", dest="admin", action="store_const", const=False, help="no longer an admin"
    )
    disabled = update.add_mutually_exclusive_group()
    disabled.add_argument(
        "--disable",
        dest="disabled",
        action="store_const",
        const=True,
        default=None,
        help="refuse their tokens",
    )
    disabled.add_argument(
        "--enable", dest="disabled", action="store_const", const=False, help="accept them again"
    )
    update.add_argument(
        "--groups", nargs="*", metavar="G", help="replace the user's groups (none given: no groups)"
    )

    tokens = group("tokens", "API tokens")
    token_create = leaf(tokens, "create", cmd_tokens_create, "create an API token; prints only its secret")
    token_create.add_argument("--user", default="", metavar="NAME", help="whose token (default: yours)")
    token_create.add_argument(
        "--expires-in", default=None, metavar="DURATION", help="e.g. 90s, 15m, 12h, 30d, 1y (default: never)"
    )
    token_create.add_argument(
        "--description", default="", metavar="TEXT", help="what the token is for, shown in listings"
    )
    token_list = leaf(tokens, "list", cmd_tokens_list, "list tokens (yours; everyone's for an admin)")
    token_list.add_argument("--user", default="", metavar="NAME", help="only this user's tokens")
    token_list.add_argument("--all", action="store_true", help="include revoked tokens")
    leaf(tokens, "revoke", cmd_tokens_revoke, "revoke a token").add_argument("id", help="the token id")

    permissions = group("permissions", "grants on experiments and registered models")
    grant = leaf(permissions, "set", cmd_permissions_set, "grant a user or group a level")
    _target_options(grant)
    _principal_options(grant)
    grant.add_argument(
        "--level", required=True, type=str.upper, choices=LEVELS, help="READ < EDIT < MANAGE (any case)"
    )
    listing = leaf(permissions, "list", cmd_permissions_list, "current grants (and a model's protection)")
    _target_options(listing)
    listing.add_argument("--history", action="store_true", help="also the grant changes, with actor and time")
    revoke = leaf(permissions, "delete", cmd_permissions_delete, "remove a user's or group's grant")
    _target_options(revoke)
    _principal_options(revoke)

    protect = leaf(models, "protect", cmd_models_protect, "which changes to a model need MANAGE")
    protect.add_argument("name", help=MODEL_HELP)
    protect.add_argument(
        "--alias", action="append", metavar="A", help="a protected alias; repeatable; replaces the list"
    )
    protect.add_argument(
        "--no-production", action="store_true", help="moving versions in or out of Production needs only EDIT"
    )

    access = group("access", "the access audit")
    events = leaf(access, "events", cmd_access_events, "user and token changes, newest first")
    events.add_argument(
        "--max-results", type=positive_int, default=100, help="at most this many events (default %(default)s)"
    )
