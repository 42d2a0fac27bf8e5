"""The hint text other modules print, and a ``dotevals.cli`` package that imports lightly."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import dotevals
import dotevals.cli
from dotevals.cli._hints import show_hint

SRC = str(Path(dotevals.__file__).resolve().parents[1])


def test_show_hint_quotes_every_word() -> None:
    assert show_hint("my exp", "--errors") == "dotevals show 'my exp' --errors"


def test_the_hints_import_neither_click_nor_the_commands() -> None:
    code = "import sys, dotevals.cli._hints; print(sorted(m for m in sys.modules if 'click' in m))"
    env = {**os.environ, "PYTHONPATH": SRC}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_main_is_imported_on_first_use() -> None:
    from dotevals.cli._main import main

    assert dotevals.cli.main is main
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        dotevals.cli.nope  # noqa: B018
