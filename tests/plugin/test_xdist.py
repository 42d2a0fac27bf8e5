"""The xdist hand-over: workers' summaries reach the controller's table whole (usage included,
and each figure's n, method and level)."""

from __future__ import annotations

import pytest

USAGE_EVALS = """
from dotevals import Result, Score, Usage, foreach
from dotevals.metrics import accuracy

@foreach("x", range(4), model="m-a")
def eval_a(x):
    return Result(Score("ok", True, [accuracy()]), usage=Usage(10, 5, 15))

@foreach("x", range(3), model="m-b")
def eval_b(x):
    return Result(Score("ok", x > 0), usage=Usage(100, 0, 100))
"""


def test_workers_hand_their_summaries_with_usage_to_the_controller(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "160")  # each figure on one line
    pytester.makepyfile(eval_usage=USAGE_EVALS)
    result = pytester.runpytest_subprocess("-n", "2", "-p", "no:benchmark")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*evaluation*rows*errors*tokens*"])
    # 4 rows x 15 tokens, from a worker; the interval says how it was made
    result.stdout.fnmatch_lines(
        ["*eval_a*4*0*ok.accuracy 1.000 [[]0.510, 1.000[]] n=4 Wilson 95%*60*"]
    )
    result.stdout.fnmatch_lines(["*eval_b*3*0*300*"])
