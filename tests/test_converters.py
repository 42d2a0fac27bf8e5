"""checked(): parse a command-line string, then refuse what is out of range."""

from __future__ import annotations

import argparse

import pytest

from dotevals._converters import checked


def parser_with(convert: object) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="prog", exit_on_error=False)
    parser.add_argument("--n", type=convert)
    return parser


def test_a_valid_value_is_the_parsed_one() -> None:
    assert checked("_positive", int, lambda n: n >= 1)("3") == 3


def test_without_must_be_argparse_names_the_converter() -> None:
    parser = parser_with(checked("_positive", int, lambda n: n >= 1))
    with pytest.raises(argparse.ArgumentError, match="invalid _positive value: '0'"):
        parser.parse_args(["--n", "0"])


def test_with_must_be_argparse_says_what_the_value_must_be() -> None:
    parser = parser_with(checked("_port", int, lambda n: n < 65536, "below 65536"))
    with pytest.raises(argparse.ArgumentError, match="must be below 65536, got '70000'"):
        parser.parse_args(["--n", "70000"])
    with pytest.raises(argparse.ArgumentError, match="invalid _port value: 'x'"):
        parser.parse_args(["--n", "x"])
