"""The promotion commands of ``modelreg``: ``gates set|show|delete``, ``promote`` and
``approvals list|request|approve|reject`` (README, "Promotion gates and approvals").

A refused promotion is the server's one-line error, e.g.
``error: PROMOTION_GATE_FAILED: metrics.rmse < 12 failed: 13.4 is not < 12``, exit status 1.
Output, errors and exit codes follow :mod:`modelreg.cli`.
"""

from __future__ import annotations

import argparse

from modelreg import entities as e
from modelreg.cli import (
    COMMENT_HELP,
    EXIT_OK,
    MODEL_HELP,
    VERSION_HELP,
    CommandTree,
    Output,
    _client,
    _time,
    positive_int,
)

TARGET_HELP = "Staging, Production or @alias (e.g. @champion)"
STATUSES = ("PENDING", "APPROVED", "REJECTED", "CONSUMED", "EXPIRED")


def cmd_gates_set(args: argparse.Namespace, out: Output) -> int:
    gate = _client(args).set_promotion_gate(
        args.name,
        args.target,
        args.condition,
        require_signature=args.require_signature,
        require_digests=args.require_digests,
        approvals_required=args.approvals,
    )
    _show_gates(out, [gate])
    return EXIT_OK


def cmd_gates_show(args: argparse.Namespace, out: Output) -> int:
    _show_gates(out, _client(args).get_promotion_gates(args.name))
    return EXIT_OK


def _show_gates(out: Output, gates: list[e.PromotionGate]) -> None:
    if out.as_json:
        out.json(gates)
        return
    out.table(
        ["TARGET", "CONDITION", "SIGNATURE", "DIGESTS", "APPROVALS", "UPDATED", "UPDATED_BY"],
        [
            (
                g.target,
                g.condition or "-",
                g.require_signature,
                g.require_digests,
                g.approvals_required,
                _time(g.updated_time),
                g.updated_by,
            )
            for g in gates
        ],
    )


def cmd_gates_delete(args: argparse.Namespace, out: Output) -> int:
    _client(args).delete_promotion_gate(args.name, args.target)
    if not out.as_json:
        out.line(f"removed the gate on {args.target} of {args.name}")
    return EXIT_OK


def cmd_promote(args: argparse.Namespace, out: Output) -> int:
    """Into a stage (a transition) or onto an alias; the target's gate decides."""
    client = _client(args)
    if args.to.startswith("@"):
        client.set_registered_model_alias(
            args.name, args.to[1:], args.version, override_gates=args.override_gates
        )
        message = f"{args.name} version {args.version} is now {args.to}"
    else:
        version = client.transition_model_version_stage(
            args.name,
            args.version,
            args.to,
            archive_existing_versions=not args.no_archive,
            comment=args.comment,
            override_gates=args.override_gates,
        )
        message = f"{version.name} version {version.version} is now in {version.current_stage}"
    if out.as_json:
        out.json({"name": args.name, "version": args.version, "target": args.to})
    else:
        out.line(message)
    return EXIT_OK


def _show_requests(out: Output, requests: list[e.ApprovalRequest]) -> None:
    if out.as_json:
        out.json(requests)
        return
    out.table(
        [
            "ID",
            "VERSION",
            "TARGET",
            "STATUS",
            "REQUESTED_BY",
            "REQUESTED",
            "EXPIRES",
            "DECIDED_BY",
            "COMMENT",
        ],
        [
            (
                r.request_id,
                r.version,
                r.target,
                r.status,
                r.requested_by,
                _time(r.requested_time),
                _time(r.expires_time),
                r.decided_by or "-",
                r.comment or "-",
            )
            for r in requests
        ],
    )


def cmd_approvals_list(args: argparse.Namespace, out: Output) -> int:
    _show_requests(out, _client(args).list_approval_requests(args.name, args.status or ""))
    return EXIT_OK


def cmd_approvals_request(args: argparse.Namespace, out: Output) -> int:
    made = _client(args).request_promotion_approval(args.name, args.version, args.to, args.comment)
    _show_requests(out, [made])
    return EXIT_OK


def cmd_approvals_approve(args: argparse.Namespace, out: Output) -> int:
    _show_requests(out, [_client(args).approve_promotion(args.name, args.request_id, args.comment)])
    return EXIT_OK


def cmd_approvals_reject(args: argparse.Namespace, out: Output) -> int:
    _show_requests(out, [_client(args).reject_promotion(args.name, args.request_id, args.comment)])
    return EXIT_OK


def add_gate_commands(tree: CommandTree) -> None:
    leaf, group = tree.leaf, tree.group

    gates = group("gates", "promotion gates of a registered model")
    gate_set = leaf(gates, "set", cmd_gates_set, "guard promotions into a stage or alias (replaces its gate)")
    gate_set.add_argument("name", help=MODEL_HELP)
    gate_set.add_argument("--target", required=True, help=TARGET_HELP)
    gate_set.add_argument(
        "--condition",
        default="",
        help='e.g. "metrics.rmse < 12 and metrics.rmse <= holder.metrics.rmse * 1.01"',
    )
    gate_set.add_argument("--require-signature", action="store_true", help="the MLmodel has a signature")
    gate_set.add_argument("--require-digests", action="store_true", help="the version has file digests")
    gate_set.add_argument(
        "--approvals", type=int, choices=(0, 1), default=0, help="1: another MANAGE holder must approve"
    )
    leaf(gates, "show", cmd_gates_show, "a model's gates").add_argument("name", help=MODEL_HELP)
    gate_delete = leaf(gates, "delete", cmd_gates_delete, "remove the gate on a target")
    gate_delete.add_argument("name", help=MODEL_HELP)
    gate_delete.add_argument("--target", required=True, help=TARGET_HELP)

    promote = leaf(tree.commands, "promote", cmd_promote, "move a version into a stage or onto an alias")
    promote.add_argument("name", help=MODEL_HELP)
    promote.add_argument("version", type=positive_int, help=VERSION_HELP)
    promote.add_argument("--to", required=True, help=TARGET_HELP)
    promote.add_argument("--override-gates", action="store_true", help="admins: promote despite the gate")
    promote.add_argument("--no-archive", action="store_true", help="keep the stage's other versions there")
    promote.add_argument("--comment", default="", help=COMMENT_HELP)

    approvals = group("approvals", "two-person approvals of promotions")
    listing = leaf(approvals, "list", cmd_approvals_list, "a model's approval requests, newest first")
    listing.add_argument("name", help=MODEL_HELP)
    listing.add_argument("--status", type=str.upper, choices=STATUSES, default=None, help="only this status")
    request = leaf(approvals, "request", cmd_approvals_request, "ask for approval to promote a version")
    request.add_argument("name", help=MODEL_HELP)
    request.add_argument("version", type=positive_int, help=VERSION_HELP)
    request.add_argument("--to", required=True, help=TARGET_HELP)
    request.add_argument("--comment", default="", help="why")
    for action, handler in (("approve", cmd_approvals_approve), ("reject", cmd_approvals_reject)):
        decide = leaf(approvals, action, handler, f"{action} a pending request (not your own)")
        decide.add_argument("name", help=MODEL_HELP)
        decide.add_argument("request_id", type=positive_int, help="the request's ID")
        decide.add_argument("--comment", default="", help="why")
