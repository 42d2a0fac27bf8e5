"""Installing dotevals changes nothing in a session that collects no evaluation.

Each ordinary project below runs with the plugin and with ``-p no:dotevals``: the same items,
the same outcomes and the same warnings. Then the plugin's own surface: namespaced options
beside a conftest's, ini settings, the marker, junitxml properties.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

import pytest

from dotevals.concurrency import DEFAULT_MAX_CONCURRENCY
from dotevals.pytest_plugin import _options
from dotevals.storage import DEFAULT_STORAGE

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

HELPERS = """
def eval_expression(expr):
    return eval(expr)


def test_uses_the_helper():
    assert eval_expression("1 + 1") == 2
"""

ASYNC_TESTS = """
import pytest


async def test_unmarked():
    assert False


@pytest.mark.asyncio
async def test_marked():
    assert True
"""

OWN_MODEL_OPTION = """
def pytest_addoption(parser):
    parser.addoption("--model", default="none")
    parser.addoption("--samples", default="0")
"""

USES_OWN_MODEL = """
def test_model(request):
    assert request.config.getoption("model") == "mine"
    assert request.config.getoption("samples") == "3"
"""


def _outcome(result: pytest.RunResult) -> tuple[dict[str, int], list[str]]:
    outcomes = {k: v for k, v in result.parseoutcomes().items() if k != "seconds"}
    items = sorted(line.split(" ")[0] for line in result.outlines if "::" in line)
    return outcomes, items


def _same_with_and_without(pytester: pytest.Pytester, *args: str) -> dict[str, int]:
    with_us = pytester.runpytest_subprocess("-v", "-p", "no:cacheprovider", *args)
    without = pytester.runpytest_subprocess(
        "-v", "-p", "no:cacheprovider", "-p", "no:dotevals", *args
    )
    assert _outcome(with_us) == _outcome(without)
    warnings = [line for line in with_us.outlines if "Warning" in line]
    assert warnings == [line for line in without.outlines if "Warning" in line]
    return _outcome(with_us)[0]


def test_helpers_named_eval_are_neither_collected_nor_imported(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_helpers=HELPERS)
    pytester.makepyfile(eval_utils="raise RuntimeError('a helper module was imported')\n")
    assert _same_with_and_without(pytester) == {"passed": 1}


def test_unmarked_async_tests_behave_as_pytest_asyncio_says(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_async=ASYNC_TESTS)
    outcomes = _same_with_and_without(pytester)
    assert outcomes.get("passed") == 1  # the marked one; the unmarked one is not run as passed


def test_a_conftest_defining_model_and_samples_wins(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(OWN_MODEL_OPTION)
    pytester.makepyfile(test_model=USES_OWN_MODEL)
    assert _same_with_and_without(pytester, "--model", "mine", "--samples", "3") == {"passed": 1}


def test_our_model_stays_reachable_under_its_namespaced_name(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(OWN_MODEL_OPTION)
    pytester.makepyfile(
        eval_m="""
        from dotevals import foreach

        @foreach("x", [1, 2, 3, 4])
        def eval_m(x):
            return True
        """
    )
    result = pytester.runpytest("--dotevals-samples", "2", "--experiment", "ns", "-v")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*--samples*defined elsewhere*", "*eval_m*2/2*"])


def test_cache_never_takes_a_path(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        eval_math="""
        from dotevals import foreach

        @foreach("x", [1])
        def eval_math(x):
            return True
        """
    )
    result = pytester.runpytest_subprocess("--cache", "eval_math.py", "--experiment", "c", "-v")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*eval_math.py::eval_math PASSED*", "*response cache*"])
    assert (pytester.path / ".dotevals" / "cache.sqlite").exists()


def _marker_project(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_mixed="""
        from dotevals import foreach

        def test_ordinary():
            pass

        @foreach("x", [1])
        def check_anything(x):  # any name: the spec makes it an evaluation
            return True

        @foreach("x", [1])
        def for_dotevals_run(x):
            return True

        for_dotevals_run.__test__ = False  # kept out, as pytest does for tests
        """
    )


@pytest.mark.parametrize(
    ("expression", "expected"),
    [("dotevals", "check_anything"), ("not dotevals", "test_ordinary")],
)
def test_the_marker_selects_evaluations(
    pytester: pytest.Pytester, expression: str, expected: str
) -> None:
    _marker_project(pytester)
    result = pytester.runpytest("--strict-markers", "-m", expression, "-v", "--experiment", "m")
    result.assert_outcomes(passed=1, deselected=1)
    result.stdout.fnmatch_lines([f"*::{expected} PASSED*"])


def test_settings_come_from_pyproject_and_the_command_line_wins(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyprojecttoml(
        """
        [tool.pytest.ini_options]
        dotevals_storage = "sqlite://results.db"
        dotevals_experiment = "from-ini"
        dotevals_samples = "2"
        """
    )
    pytester.makepyfile(
        eval_ini="""
        from dotevals import foreach

        @foreach("x", [1, 2, 3, 4])
        def eval_ini(x):
            return True
        """
    )
    result = pytester.runpytest("-v")
    result.stdout.fnmatch_lines(
        ["dotevals: results in sqlite://results.db, experiment from-ini", "*eval_ini*2/2*"]
    )
    assert (pytester.path / "results.db").exists()
    result = pytester.runpytest("--samples", "3", "--dotevals-experiment", "cli", "-v")
    result.stdout.fnmatch_lines(["dotevals: results in sqlite://results.db, experiment cli"])
    result.stdout.fnmatch_lines(["*eval_ini*3/3*"])


def test_a_bad_ini_value_is_a_usage_error_naming_the_key(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\ndotevals_samples = many\n")
    pytester.makepyfile(test_x="def test_x():\n    pass\n")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*dotevals_samples = 'many' is not valid*"])


def _properties(path: Any) -> dict[str, str]:
    root = ET.parse(path).getroot()
    found = {}
    for prop in root.iter("property"):
        found[prop.attrib["name"]] = prop.attrib["value"]
    return found


def test_metrics_reach_junitxml(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        eval_junit="""
        from dotevals import foreach

        @foreach("x", [1, 2, 3, 4])
        def eval_junit(x):
            return x != 4
        """
    )
    result = pytester.runpytest("--junitxml=out.xml", "--experiment", "ju")
    result.assert_outcomes(passed=1)
    props = _properties(pytester.path / "out.xml")
    assert props["dotevals.experiment"] == "ju"
    assert props["dotevals.rows"] == "4"
    assert props["dotevals.errors"] == "0"
    names = [name for name in props if name.endswith(".accuracy")]
    assert len(names) == 1
    key = names[0]
    assert float(props[key]) == 0.75
    assert float(props[f"{key}.ci_low"]) < 0.75 < float(props[f"{key}.ci_high"])
    assert props[f"{key}.n"] == "4"


def test_defaults_agree_with_the_modules_that_own_them() -> None:
    assert _options.DEFAULT_STORAGE == DEFAULT_STORAGE
    assert _options.DEFAULT_MAX_CONCURRENCY == DEFAULT_MAX_CONCURRENCY


def test_every_option_has_a_namespaced_form_and_an_ini_key(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--help")
    for option in _options.OPTIONS:
        result.stdout.fnmatch_lines([f"*{option.long}*"])
        result.stdout.fnmatch_lines([f"*{option.dest} (*"])


def test_a_malformed_price_table_is_a_usage_error_naming_it(pytester: pytest.Pytester) -> None:
    pytester.makefile(".toml", prices="[models.m]\ninput = 'cheap'\n")
    pytester.makepyfile(test_x="def test_x():\n    pass\n")
    result = pytester.runpytest("--prices", "prices.toml")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--dotevals-prices*prices.toml*"])
