"""The plugin's uses of pytest and pytest-asyncio internals (``dotevals/_pytest_internals.py``).

Each is checked here against the installed versions; ``.ci/lower-bounds`` runs these (and the
other plugin tests) against the lowest versions pyproject.toml allows.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from dotevals import _pytest_internals as _internals


def test_taken_option_names_sees_every_group(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        "def pytest_addoption(parser):\n"
        "    parser.addoption('--mine')\n"
        "    parser.getgroup('other').addoption('--theirs')\n"
    )
    config = pytester.parseconfig()
    taken = _internals.taken_option_names(config._parser)
    assert {"--mine", "--theirs", "--dotevals-model", "-k"} <= taken


async def _plain() -> int:
    return 1


def test_handle_async_fixture_marks_a_copy_only() -> None:
    copy = _internals.handle_async_fixture(_plain, "session")
    assert copy is not _plain
    assert _internals.is_plain_async(_plain)
    assert not _internals.is_plain_async(copy)
    assert copy.__name__ == "_plain"


def test_matches_python_files_follows_the_ini(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\npython_files = check_*.py\n")
    config = pytester.parseconfig()
    assert _internals.matches_python_files(config, Path("pkg/check_x.py"))
    assert not _internals.matches_python_files(config, Path("pkg/eval_x.py"))
