"""What the `modelreg` CLI prints: server text cannot drive the terminal, and every option says
what it is for in --help."""

from __future__ import annotations

import argparse
import io
import json
import unicodedata
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelreg.cli import Output, build_parser, printable

# Nothing written to disk (.hypothesis/), no per-example deadline on a busy machine.
PROPERTY = settings(database=None, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Any text, weighted towards what drives a terminal: ESC and CSI sequences, C1, line breaks, bidi.
HOSTILE = st.lists(
    st.one_of(
        st.characters(codec="utf-8"),
        st.sampled_from(["\x1b", "\x1b[31m", "\x1b]0;title\x07", "\x9b", "\x85", "\r", "\n", "\t", "\u202e"]),
    )
).map("".join)


def _control(char: str) -> bool:
    """C0 (ESC included), DEL, C1, and the line and paragraph separators."""
    return unicodedata.category(char) in ("Cc", "Zl", "Zp")


def _lines(text: str) -> Iterator[str]:
    """The printed lines, each of which must end with the newline print() wrote."""
    assert text.endswith("\n")
    yield from text[:-1].split("\n")


@PROPERTY
@given(rows=st.lists(st.lists(HOSTILE, min_size=3, max_size=3), max_size=4), header=HOSTILE)
def test_no_drawn_string_puts_a_control_character_in_a_table(rows: list[list[str]], header: str) -> None:
    stdout = io.StringIO()
    Output(stdout, io.StringIO(), as_json=False).table(["A", "B", "C"], rows)
    lines = list(_lines(stdout.getvalue()))
    assert len(lines) == 1 + len(rows)  # a value cannot start a row of its own
    assert not [c for line in lines for c in line if _control(c)]

    stdout, stderr = io.StringIO(), io.StringIO()
    out = Output(stdout, stderr, as_json=False)
    out.fields([("name", header), ("tags", {header: header}), ("aliases", [header])])
    out.line(header)
    out.error(header)
    for printed, count in ((stdout.getvalue(), 4), (stderr.getvalue(), 1)):
        lines = list(_lines(printed))
        assert len(lines) == count
        assert not [c for line in lines for c in line if _control(c)]


@PROPERTY
@given(text=HOSTILE)
def test_json_output_round_trips_every_string_and_stays_escaped(text: str) -> None:
    stdout = io.StringIO()
    Output(stdout, io.StringIO(), as_json=True).json({"name": text})
    assert json.loads(stdout.getvalue()) == {"name": text}
    assert not [c for c in stdout.getvalue().rstrip("\n").replace("\n", "") if _control(c)]


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("plain name-1.0 zoë 模型", "plain name-1.0 zoë 模型"),
        ("\x1b[31mred\x1b[0m", "\\x1b[31mred\\x1b[0m"),
        ("\x1b]0;title\x07", "\\x1b]0;title\\x07"),
        ("a\nb\r\tc", "a\\nb\\r\\tc"),
        ("\x9b2J\x7f\x00", "\\x9b2J\\x7f\\x00"),
        ("evil\u202egnp.exe", "evil\\u202egnp.exe"),
        ("line\u2028break", "line\\u2028break"),
    ],
)
def test_printable_shows_control_characters_as_escapes(text: str, shown: str) -> None:
    assert printable(text) == shown


def _parsers(parser: argparse.ArgumentParser, path: str) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _parsers(sub, f"{path} {name}")


def test_every_option_of_every_command_has_help_text_in_its_help() -> None:
    checked = set()
    for path, parser in _parsers(build_parser(), "modelreg"):
        shown = " ".join(parser.format_help().split())
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction | argparse._HelpAction):
                continue
            name = "/".join(action.option_strings) or action.dest
            assert action.help and action.help != argparse.SUPPRESS, f"{path} {name} has no help text"
            expanded = action.help % {"default": action.default}
            assert " ".join(expanded.split()) in shown, f"{path} --help does not show {name}'s help"
            checked.add(f"{path} {name}")
    # The server distribution's commands are among them.
    assert {"modelreg server --tracking-port", "modelreg server --registry-port"} <= checked
    assert "modelreg server --data-dir" in checked
