"""The xdist hand-over: workers' summaries reach the controller's table whole (usage included)."""

from __future__ import annotations

import pytest

USAGE_EVALS = """
from dotevals import Result, Score, Usage, foreach

@foreach("x", range(4), model="m-a")
def eval_a(x):
    return Result(Score("ok", True), usage=Usage(10, 5, 15))

@foreach("x", range(3), model="m-b")
def eval_b(x):
    return Result(Score("ok", x > 0), usage=Usage(100, 0, 100))
"""


def test_workers_hand_their_summaries_with_usage_to_the_controller(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(eval_usage=USAGE_EVALS)
    result = pytester.runpytest_subprocess("-n", "2", "-p", "no:benchmark")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*evaluation*rows*errors*tokens*"])
    result.stdout.fnmatch_lines(["*eval_a*4*0*60*"])  # 4 rows x 15 tokens, from a worker
    result.stdout.fnmatch_lines(["*eval_b*3*0*300*"])
