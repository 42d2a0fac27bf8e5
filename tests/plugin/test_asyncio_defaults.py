"""pytest-asyncio defaults filled in by the plugin (``pytest_plugin/_asyncio_defaults.py``).

With no asyncio settings of the user's, pytest-asyncio runs in ``auto`` mode with ``session``
loop scopes, so plain ``@pytest.fixture async def`` fixtures work and a session-scoped one
meets per-test ones on one event loop. A value the user gave (ini file, pyproject.toml, ``-o``,
``--asyncio-mode``) is kept. ``eval_*`` collection patterns are added to the user's own.
These run real pytest sessions against the installed pytest and pytest-asyncio, whose
internals the module writes into.
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

#: pytest-asyncio's report header with every default of ours in place.
OUR_DEFAULTS = (
    "asyncio: mode=Mode.AUTO, *asyncio_default_fixture_loop_scope=session, "
    "asyncio_default_test_loop_scope=session"
)

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


async def test_plain(provider, per_test):
    await asyncio.sleep(0)
    assert provider is asyncio.get_running_loop()
    assert per_test is asyncio.get_running_loop()
"""


def test_defaults_apply_when_the_user_set_none(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_nothing="def test_nothing():\n    pass\n")
    result = pytester.runpytest()
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([OUR_DEFAULTS])


def test_session_fixture_and_per_test_async_generator_share_one_loop(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(eval_loop=SHARED_LOOP)
    result = pytester.runpytest("--experiment", "loop", "-v")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*eval_loop PASSED*", "*test_plain PASSED*"])
    result.stdout.fnmatch_lines(["*eval_loop*3/3*accuracy 1.000*"])
    teardowns = (pytester.path / "teardowns.txt").read_text().split()
    assert teardowns == ["closed", "closed"]  # the async generator finished for each item


def test_ini_settings_of_the_user_are_kept(pytester: pytest.Pytester) -> None:
    pytester.makeini(
        "[pytest]\nasyncio_mode = strict\nasyncio_default_fixture_loop_scope = function\n"
    )
    pytester.makepyfile(test_nothing="def test_nothing():\n    pass\n")
    result = pytester.runpytest()
    result.assert_outcomes(passed=1)
    # the two values given are kept; the one not given is still filled in
    result.stdout.fnmatch_lines(
        [
            "asyncio: mode=Mode.STRICT, *asyncio_default_fixture_loop_scope=function, "
            "asyncio_default_test_loop_scope=session"
        ]
    )


def test_pyproject_settings_of_the_user_are_kept(pytester: pytest.Pytester) -> None:
    pytester.makepyprojecttoml(
        '[tool.pytest.ini_options]\nasyncio_default_test_loop_scope = "function"\n'
    )
    pytester.makepyfile(test_nothing="def test_nothing():\n    pass\n")
    result = pytester.runpytest()
    result.stdout.fnmatch_lines(
        [
            "asyncio: mode=Mode.AUTO, *asyncio_default_fixture_loop_scope=session, "
            "asyncio_default_test_loop_scope=function"
        ]
    )


def test_command_line_settings_of_the_user_are_kept(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_nothing="def test_nothing():\n    pass\n")
    result = pytester.runpytest(
        "--asyncio-mode=strict", "-o", "asyncio_default_fixture_loop_scope=module"
    )
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            "asyncio: mode=Mode.STRICT, *asyncio_default_fixture_loop_scope=module, "
            "asyncio_default_test_loop_scope=session"
        ]
    )


def test_strict_mode_of_the_user_leaves_plain_async_fixtures_to_pytest(
    pytester: pytest.Pytester,
) -> None:
    # in the user's strict mode a plain @pytest.fixture async def is not run by
    # pytest-asyncio: the setting really reached it, and evaluations still run
    pytester.makeini("[pytest]\nasyncio_mode = strict\n")
    pytester.makepyfile(
        eval_strict="""
        import asyncio
        import pytest
        import pytest_asyncio
        from dotevals import foreach

        @pytest.fixture
        async def plain():
            return 1

        @pytest_asyncio.fixture
        async def marked():
            return asyncio.get_running_loop()

        @foreach("x", [1, 2])
        async def eval_strict(x, marked):
            return marked is asyncio.get_running_loop()

        @pytest.mark.asyncio
        async def test_plain_fixture(plain):
            assert plain == 1
        """
    )
    result = pytester.runpytest("--experiment", "strict", "-v")
    result.stdout.fnmatch_lines(["*eval_strict PASSED*"])
    result.stdout.no_fnmatch_line("*test_plain_fixture PASSED*")
    outcomes = result.parseoutcomes()
    assert outcomes.get("passed") == 1
    assert outcomes.get("failed", 0) + outcomes.get("errors", 0) == 1


def test_eval_patterns_are_added_to_the_users_own(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\npython_files = check_*.py\npython_functions = check_*\n")
    pytester.makepyfile(
        check_mine="def check_one():\n    pass\n",
        eval_mine="""
        from dotevals import foreach

        @foreach("x", [1])
        def eval_one(x):
            return True

        def check_two():
            pass
        """,
    )
    result = pytester.runpytest("--experiment", "patterns", "-v")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(
        ["*check_mine.py::check_one PASSED*", "*eval_mine.py::eval_one PASSED*"]
    )
