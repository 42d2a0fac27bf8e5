"""Converters of command-line strings: parse, then check (the plugin's options, the test server)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TypeVar

__all__ = ["checked"]

_T = TypeVar("_T")


def checked(
    name: str,
    parse: Callable[[str], _T],
    valid: Callable[[_T], bool],
    must_be: str | None = None,
) -> Callable[[str], _T]:
    """A converter called ``name`` (argparse's errors show it): ``parse``, then check ``valid``.

    A value ``parse`` takes but ``valid`` refuses raises :class:`argparse.ArgumentTypeError`
    saying it "must be ``must_be``" when that is given, else a :class:`ValueError` (which
    argparse shows as "invalid NAME value"); what ``parse`` refuses raises its own error.
    """

    def convert(text: str) -> _T:
        value = parse(text)
        if valid(value):
            return value
        if must_be is None:
            raise ValueError(text)
        raise argparse.ArgumentTypeError(f"must be {must_be}, got {text!r}")

    convert.__name__ = convert.__qualname__ = name
    return convert
