"""Evaluations and the async fixtures they use share pytest-asyncio's session loop.

Nothing else about pytest-asyncio changes (``dotevals/_pytest_internals.py``): its mode, loop
scopes and warnings are whatever the user's settings make them. These run real pytest sessions
against the installed pytest and pytest-asyncio.
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

SHARED_LOOP = """
import asyncio
from pathlib import Path

import pytest
from dotevals import foreach


@pytest.fixture(scope="session")
async def provider():
    return asyncio.get_running_loop()


@pytest.fixture
async def per_test():
    loop = asyncio.get_running_loop()
    yield loop
    assert asyncio.get_running_loop() is loop
    with Path("teardowns.txt").open("a") as f:
        f.write("closed\\n")


@foreach("x", [1, 2, 3], threshold={"accuracy": 1.0})
async def eval_loop(x, provider, per_test):
    await asyncio.sleep(0)
    loop = asyncio.get_running_loop()
    return provider is loop and per_test is loop


@foreach("x", [1], threshold={"accuracy": 1.0})
def eval_sync(x, per_test):
    return per_test is not None
"""


@pytest.mark.parametrize("settings", ["", "[pytest]\nasyncio_mode = auto\n"])
def test_plain_async_fixtures_of_evaluations_share_the_session_loop(
    pytester: pytest.Pytester, settings: str
) -> None:
    if settings:
        pytester.makeini(settings)
    pytester.makepyfile(eval_loop=SHARED_LOOP)
    result = pytester.runpytest("--experiment", "loop", "-v")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*eval_loop*3/3*accuracy 1.000*"])
    result.stdout.no_fnmatch_line("*requested async @pytest.fixture*")  # strict mode's warning
    teardowns = (pytester.path / "teardowns.txt").read_text().split()
    assert teardowns == ["closed", "closed"]  # the async generator finished for each item


def test_an_ordinary_test_using_the_same_plain_fixture_is_left_to_pytest_asyncio(
    pytester: pytest.Pytester,
) -> None:
    # the evaluation gets its plain async fixture; the ordinary test asking for the same
    # fixture ends exactly as it does without dotevals (what that is depends on the pytest
    # and pytest-asyncio versions: a failure, or a pass with their warnings)
    source = SHARED_LOOP + (
        "\n\n@pytest.mark.asyncio\nasync def test_plain(per_test):\n    assert per_test\n"
    )
    pytester.makepyfile(test_mixed=source)
    with_us = pytester.runpytest("--experiment", "mixed", "-v")
    with_us.stdout.fnmatch_lines(["*eval_loop PASSED*"])
    alone = pytester.runpytest("--experiment", "alone", "-k", "test_plain")
    without = pytester.runpytest("-p", "no:dotevals", "-k", "test_plain")
    ignored = {"seconds", "deselected"}  # without us, the evaluations are not collected at all
    outcomes = {k: v for k, v in alone.parseoutcomes().items() if k not in ignored}
    assert outcomes == {k: v for k, v in without.parseoutcomes().items() if k not in ignored}


def test_marked_fixtures_keep_the_loop_they_ask_for(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        eval_strict="""
        import asyncio
        import pytest_asyncio
        from dotevals import foreach

        @pytest_asyncio.fixture(loop_scope="session")
        async def marked():
            return asyncio.get_running_loop()

        @foreach("x", [1, 2], threshold={"accuracy": 1.0})
        async def eval_strict(x, marked):
            return marked is asyncio.get_running_loop()
        """
    )
    result = pytester.runpytest("--experiment", "strict", "-v")
    result.assert_outcomes(passed=1)


def test_pytest_asyncio_settings_are_untouched(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_nothing="def test_nothing():\n    pass\n")
    with_us = pytester.runpytest()
    without = pytester.runpytest("-p", "no:dotevals")
    header = [line for line in with_us.outlines if line.startswith("asyncio:")]
    assert header == [line for line in without.outlines if line.startswith("asyncio:")]
    assert "mode=Mode.STRICT" in header[0]
