"""``pytest --baseline EXPERIMENT``: a regression gate that fails on real drops, not on noise.

Models of the local test server (a real subprocess over HTTP): ``beta`` echoes every answer
(all right); ``alpha`` is asked the sums, and the server's model is wrong on purpose on the
20 "hard" rows (multiples of 7 with both operands above 10); ``gamma`` is asked one hard sum.
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

EVAL = """
from dotevals import Result, foreach
from dotevals.evaluators import numeric_match

HARD = [(a, b) for a in (14, 21, 28, 35, 42) for b in (14, 21, 28, 35)]
EASY = [(a, b) for a in range(1, 6) for b in range(1, 5)]

@foreach("a,b", HARD + EASY)
async def eval_sums(a, b, model):
    asked = model.model == "alpha" or (model.model == "gamma" and (a, b) == HARD[0])
    question = f"What is {a} + {b}?" if asked else f"echo: {a + b}"
    response = await model.chat.completions.create(
        model=model.model, messages=[{"role": "user", "content": question}]
    )
    reply = response.choices[0].message.content
    return Result(numeric_match(reply, str(a + b)), prompt=question, model_response=reply)
"""


@pytest.fixture
def gated(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makepyfile(eval_sums=EVAL)
    pytester.runpytest("--experiment", "good", "--model", "local:beta").assert_outcomes(passed=1)
    return pytester


def test_a_significant_drop_fails_with_the_difference_and_its_ci(gated: pytest.Pytester) -> None:
    result = gated.runpytest(
        "--experiment", "worse", "--model", "local:alpha", "--baseline", "good"
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*EvaluationFailed: eval_sums[[]local:alpha[]]: numeric_match is significantly below "
            "baseline 'good' (one-sided alpha 0.05): B - A -0.50 [[]-0.*, -0.*[]] n=40 "
            "paired Agresti-Min 90%*"
        ]
    )


def test_equal_and_within_noise_pass(gated: pytest.Pytester) -> None:
    same = gated.runpytest("--experiment", "same", "--model", "local:beta", "--baseline", "good")
    same.assert_outcomes(passed=1)
    noisy = gated.runpytest(
        "--experiment", "noisy", "--model", "local:gamma", "--dotevals-baseline", "good"
    )
    noisy.assert_outcomes(passed=1)  # one item worse: within noise
    loose = gated.runpytest(
        "--experiment", "noisy", "--model", "local:gamma", "--baseline", "good",
        "--dotevals-baseline-alpha", "0.45",
    )  # fmt: skip
    loose.assert_outcomes(failed=1)  # the same stored rows; a test this loose calls it a drop
    loose.stdout.fnmatch_lines(["*(one-sided alpha 0.45): B - A -0.03 * Agresti-Min 10%*"])


def test_baseline_from_the_ini_file_and_a_missing_baseline(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(eval_sums=EVAL)
    pytester.makeini("[pytest]\ndotevals_baseline = nowhere\n")
    result = pytester.runpytest("--model", "local:beta")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--baseline: no experiment 'nowhere' in json://.dotevals*"])
    bad_alpha = pytester.runpytest("--baseline", "x", "--dotevals-baseline-alpha", "0.7")
    assert bad_alpha.ret == pytest.ExitCode.USAGE_ERROR
