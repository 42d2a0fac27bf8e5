"""What a session shows: the summary table after pytest's own report, and the progress bar.

Names are user text and appear literally (``eval_param[small]`` is not rich markup).
"""

from __future__ import annotations

import io
import re
import sys
import types

import pytest
from rich.console import Console

from dotevals._progress import RichProgress
from dotevals.metrics import RunningMetrics
from dotevals.results import Score
from samples import PARAMETRIZED

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

#: A proportion as the summary prints it: value, interval, n, method and level.
CI = r"\d\.\d{3} \[-?\d\.\d{3}, \d\.\d{3}\] n=\d+ Wilson 95%"


def test_summary_shows_bracketed_names_literally(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(eval_param=PARAMETRIZED)
    result = pytester.runpytest("--experiment", "exp[v2]")
    result.assert_outcomes(passed=2)
    out = result.stdout.str()
    rows = [line for line in out.splitlines() if "eval_param" in line and "│" in line]
    assert any("eval_param[small]" in line for line in rows), out
    assert any("eval_param[org/large]" in line for line in rows), out
    assert "experiment exp[v2] in" in out
    assert "dotevals show 'exp[v2]'" in out  # quoted: a shell would glob the brackets


def test_summary_survives_a_name_that_is_closing_markup(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        eval_odd="""
        from dotevals import foreach

        @foreach("x", [1], name="odd[/]")
        def eval_odd(x):
            return True
        """
    )
    result = pytester.runpytest("--experiment", "e[/bold]")
    result.assert_outcomes(passed=1)
    assert "odd[/]" in result.stdout.str()
    assert "experiment e[/bold] in" in result.stdout.str()


def test_score_named_like_its_metric_shows_the_value_and_interval(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "120")  # wide enough that the figure stays on one line
    pytester.makepyfile(
        eval_named="""
        from dotevals import foreach, Result, Score
        from dotevals.metrics import accuracy

        @foreach("x", [1, 2, 3, 4])
        def eval_named(x):
            return Result(Score("accuracy", x != 4, [accuracy()]))
        """
    )
    result = pytester.runpytest("--experiment", "named")
    result.assert_outcomes(passed=1)
    out = result.stdout.str()
    assert "MetricValue" not in out
    assert re.search(rf"accuracy {CI}", out), out
    assert "accuracy 0.750 [" in out and "n=4 Wilson 95%" in out
    assert "accuracy.accuracy" not in out


def _terminal(buffer: io.StringIO) -> Console:
    return Console(file=buffer, force_terminal=True, width=120, color_system=None)


def test_progress_label_shows_bracketed_names_literally() -> None:
    buffer = io.StringIO()
    progress = RichProgress(console=_terminal(buffer))
    metrics = RunningMetrics()
    metrics.add([Score("exact[strict]", True, ["accuracy"])], False)
    for name in ("eval_param[small]", "eval_param[org/large]", "odd[/]"):
        progress.start(name, 2, 0)
        progress.update(1, 1, metrics)
        progress.finish()
    out = buffer.getvalue()
    assert "eval_param[small]" in out
    assert "eval_param[org/large]" in out
    assert "odd[/]" in out
    assert "1 errors" in out


def test_progress_draws_on_a_terminal_and_not_on_a_pipe() -> None:
    buffer = io.StringIO()
    drawn = RichProgress(console=_terminal(buffer))
    drawn.start("eval_x", 3, 0)
    assert "eval_x" in buffer.getvalue()
    drawn.finish()
    piped = io.StringIO()
    silent = RichProgress(console=Console(file=piped, force_terminal=False))
    silent.start("eval_x", 3, 0)
    silent.update(1, 0, RunningMetrics())
    silent.finish()
    assert piped.getvalue() == ""


class _Output:
    """A stand-in for ``ipywidgets.Output``: what rich draws into it reaches ``display``."""

    def __enter__(self) -> _Output:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def clear_output(self, wait: bool = False) -> None:
        return None


def test_progress_draws_in_a_jupyter_notebook(monkeypatch: pytest.MonkeyPatch) -> None:
    shown: list[object] = []
    display = types.ModuleType("IPython.display")
    display.display = lambda *objects, **_: shown.extend(objects)  # type: ignore[attr-defined]
    ipython = types.ModuleType("IPython")
    ipython.display = display  # type: ignore[attr-defined]
    widgets = types.ModuleType("ipywidgets")
    widgets.Output = _Output  # type: ignore[attr-defined]
    for name, module in (("IPython", ipython), ("IPython.display", display)):
        monkeypatch.setitem(sys.modules, name, module)
    monkeypatch.setitem(sys.modules, "ipywidgets", widgets)
    console = Console(file=io.StringIO(), force_jupyter=True)
    assert console.is_jupyter and not console.is_terminal
    progress = RichProgress(console=console)
    progress.start("eval_x", 3, 0)
    progress.update(2, 0, RunningMetrics())
    progress.finish()
    texts = [str(getattr(obj, "text", "")) for obj in shown]
    assert any("eval_x" in text and "2/3" in text for text in texts)
