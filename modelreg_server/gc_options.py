"""The options of garbage collection, shared by ``modelreg gc`` (which checks them, then runs
``python -m tracking_service gc`` with the tracking service's settings) and that command itself.

Kept free of service code: modelreg_server never imports a service.
"""

from __future__ import annotations

import argparse
import re
from typing import NamedTuple

from modelreg_server.validation import MAX_EXPERIMENT_ID

# "30d", "12h", "90m", "45s"; "0" alone means every deleted run and experiment, as MLflow's default.
_DURATION = re.compile(r"([0-9]{1,9})([dhms])")
_UNIT_MS = {"d": 86_400_000, "h": 3_600_000, "m": 60_000, "s": 1_000}
DEFAULT_OLDER_THAN = "30d"
# Longer than any deployment: larger values would only overflow the cutoff arithmetic.
MAX_OLDER_THAN_MS = 100 * 365 * _UNIT_MS["d"]


class Duration(NamedTuple):
    text: str
    ms: int


def duration(text: str) -> Duration:
    """An argparse type: ``<digits><d|h|m|s>`` or ``0``."""
    match = _DURATION.fullmatch(text)
    if text != "0" and match is None:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a duration: use a whole number and a unit, d, h, m or s (30d, 12h, 90m), or 0"
        )
    ms = 0 if match is None else int(match[1]) * _UNIT_MS[match[2]]
    if ms > MAX_OLDER_THAN_MS:
        raise argparse.ArgumentTypeError(f"{text!r} is longer than 100 years")
    return Duration(text, ms)


def experiment_ids(text: str) -> tuple[int, ...]:
    """An argparse type: comma-separated experiment ids, each from 0 to MAX_EXPERIMENT_ID."""
    items = [item.strip() for item in text.split(",")]
    if not all(item.isdigit() and item.isascii() for item in items):
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of experiment ids")
    too_large = [item for item in items if int(item) > MAX_EXPERIMENT_ID]
    if too_large:
        raise argparse.ArgumentTypeError(
            f"experiment id {too_large[0][:64]} is out of range: ids run from 0 to {MAX_EXPERIMENT_ID}"
        )
    return tuple(int(item) for item in items)


def run_ids(text: str) -> tuple[str, ...]:
    """An argparse type: comma-separated run ids (32 hexadecimal digits each)."""
    items = [item.strip() for item in text.split(",")]
    if not all(re.fullmatch(r"[0-9a-f]{32}", item) for item in items):
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of run ids")
    return tuple(items)


def add_gc_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--older-than",
        type=duration,
        default=duration(DEFAULT_OLDER_THAN),
        metavar="DURATION",
        help="remove only what was deleted at least this long ago: a whole number and d, h, m "
        f"or s (30d, 12h, 90m); 0 removes everything deleted (default {DEFAULT_OLDER_THAN})",
    )
    parser.add_argument(
        "--experiment-ids",
        type=experiment_ids,
        default=(),
        metavar="IDS",
        help="comma-separated: only these deleted experiments and the deleted runs in these "
        "experiments (default: every one)",
    )
    parser.add_argument(
        "--run-ids",
        type=run_ids,
        default=(),
        metavar="IDS",
        help="comma-separated: only these deleted runs; no experiment is removed unless "
        "--experiment-ids names it",
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="list what would be removed and what kept; change nothing"
    )


def gc_argv(args: argparse.Namespace, as_json: bool) -> list[str]:
    """The options of ``args`` (parsed by add_gc_arguments) as command-line arguments again."""
    argv = ["--older-than", args.older_than.text]
    if args.experiment_ids:
        argv += ["--experiment-ids", ",".join(map(str, args.experiment_ids))]
    if args.run_ids:
        argv += ["--run-ids", ",".join(args.run_ids)]
    if args.dry_run:
        argv.append("--dry-run")
    if as_json:
        argv.append("--json")
    return argv
