"""``dotevals compare``, ``dotevals.compare`` and ``pytest --baseline`` over real pytest runs.

Models of the local test server (real subprocess, real openai SDK over HTTP): ``beta`` is asked
to echo each answer and gets all right; ``alpha`` is asked the sums, and the server's model is
wrong on purpose on the 20 "hard" rows (multiples of 7 with both operands above 10); ``gamma``
is asked one hard sum. Every pytest session is a subprocess, the independent ones in parallel.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from scipy import stats as sp

import dotevals
from dotevals.cli import main
from dotevals.errors import ConfigurationError

EVAL = """
import os
from dotevals import Result, foreach
from dotevals.evaluators import numeric_match

SHIFT = int(os.environ.get("SHIFT", "0"))
HARD = [(a, b) for a in (14, 21, 28, 35, 42) for b in (14, 21, 28, 35)]
EASY = [(a, b) for a in range(1, 6) for b in range(1, 5)]

@foreach("a,b,passage", [(a + SHIFT, b, a % 5) for a, b in HARD + EASY])
async def eval_sums(a, b, passage, model):
    if os.environ.get("FAIL"):
        raise RuntimeError("model down")
    asked = model.model == "alpha" or (model.model == "gamma" and (a, b) == HARD[0])
    question = f"What is {a} + {b}?" if asked else f"echo: {a + b}"
    response = await model.chat.completions.create(
        model=model.model, messages=[{"role": "user", "content": question}]
    )
    reply = response.choices[0].message.content
    return Result(numeric_match(reply, str(a + b)), prompt=question, model_response=reply)
"""
N = 40
#: Items alpha gets wrong: the local model's off-by-one on multiples of 7 above 10.
ALPHA_WRONG = 20
#: Stores written first: (experiment, models, environment).
STORES: list[tuple[str, tuple[str, ...], dict[str, str]]] = [
    ("A", ("alpha",), {}),
    ("B", ("beta",), {}),
    ("AB", ("alpha", "beta"), {}),
    ("SHIFTED", ("beta",), {"SHIFT": "1"}),
    ("DOWN", ("beta",), {"FAIL": "1"}),
]
#: Sessions gated against B: (experiment, model, extra arguments).
GATED: list[tuple[str, str, tuple[str, ...]]] = [
    ("worse", "alpha", ("--baseline", "B")),
    ("same", "beta", ("--baseline", "B")),
    ("noisy", "gamma", ("--dotevals-baseline", "B")),
    ("loose", "gamma", ("--baseline", "B", "--dotevals-baseline-alpha", "0.45")),
    ("lost", "beta", ("-o", "dotevals_baseline=nowhere")),  # the ini key
    ("bad-alpha", "beta", ("--baseline", "B", "--dotevals-baseline-alpha", "0.7")),
]


def _pytest(root: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "eval_sums.py", *args],
        cwd=root,
        env={**os.environ, "COLUMNS": "250", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def _store(root: Path, experiment: str, models: tuple[str, ...], env: dict[str, str]) -> None:
    done = _pytest(root, "--experiment", experiment, *(f"--model=local:{m}" for m in models), **env)
    assert done.returncode in (0, 1), done.stdout + done.stderr
    (root / f"{experiment}.stdout").write_text(done.stdout)


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The stores of ``STORES`` under ``root/.dotevals``."""
    path = tmp_path_factory.mktemp("compare")
    (path / "eval_sums.py").write_text(EVAL)
    with ThreadPoolExecutor(len(STORES)) as pool:  # separate experiments: separate files
        for done in [pool.submit(_store, path, e, m, env) for e, m, env in STORES]:
            done.result()
    return path


@pytest.fixture(scope="module")
def gated(root: Path) -> dict[str, subprocess.CompletedProcess[str]]:
    """Each session of ``GATED``, by experiment."""
    with ThreadPoolExecutor(len(GATED)) as pool:
        runs = {
            e: pool.submit(_pytest, root, "--experiment", e, f"--model=local:{m}", *args)
            for e, m, args in GATED
        }
        return {e: run.result() for e, run in runs.items()}


def cli(root: Path, *args: str) -> Any:
    runner = CliRunner()
    return runner.invoke(main, [*args, "--storage", f"json://{root / '.dotevals'}"])


def test_compare_pairs_two_experiments_by_item_and_tests_the_difference(root: Path) -> None:
    result = cli(root, "compare", "A", "B")
    assert result.exit_code == 0, result.output
    n = N
    assert "A = A, B = B: differences are B - A" in result.output
    assert f"eval_sums[local:alpha] vs eval_sums[local:beta] · numeric_match: {n} paired" in (
        result.output
    )
    p = sp.binomtest(0, ALPHA_WRONG, 0.5).pvalue
    assert f"McNemar exact p={p:.4g}; discordant: A only 0, B only {ALPHA_WRONG}" in result.output
    assert f"B - A {ALPHA_WRONG / n:.3f} [" in result.output
    assert f"n={n} paired Agresti-Min 95%" in result.output


def test_compare_json_has_every_figure(root: Path) -> None:
    result = cli(root, "compare", "A", "B", "--json", "--level", "0.9")
    data = json.loads(result.output)
    (item,) = data["comparisons"]
    assert (item["a_only"], item["b_only"], item["n"]) == (0, ALPHA_WRONG, N)
    assert item["mean_b"] == 1.0
    assert item["mean_a"] == pytest.approx(1 - ALPHA_WRONG / N)
    assert item["diff"]["level"] == 0.9 and item["diff"]["lo"] < item["diff"]["hi"]
    assert item["correlation"] is None  # B is constant: no correlation to state
    assert item["detectable"] > 0


def test_one_sessions_two_models_compare_and_cluster(root: Path) -> None:
    result = cli(root, "compare", "AB", "AB", "--evaluation", "eval_sums", "--cluster", "passage")
    assert result.exit_code == 0, result.output
    assert "(5 clusters) paired cluster t 95%" in result.output
    assert "cluster-robust paired t p=" in result.output


def test_a_session_with_two_models_ends_with_their_comparison(root: Path) -> None:
    shown = (root / "AB.stdout").read_text()
    assert "paired comparison (B - A, A the first model)" in shown
    assert "eval_sums[local:alpha] vs eval_sums[local:beta] · numeric_match: 40 paired" in shown
    assert f"discordant: A only 0, B only {ALPHA_WRONG}" in shown
    assert "paired comparison" not in (root / "A.stdout").read_text()


def test_python_api_matches_the_cli(root: Path) -> None:
    store = f"json://{root / '.dotevals'}"
    comparison = dotevals.compare("A", "B", storage=store)
    (item,) = comparison.scores
    cli_item = json.loads(cli(root, "compare", "A", "B", "--json").output)["comparisons"][0]
    assert item.to_dict() == cli_item
    assert item.result.b_only == ALPHA_WRONG


def test_rows_that_differ_are_refused_by_item(root: Path) -> None:
    result = cli(root, "compare", "A", "SHIFTED")
    assert result.exit_code == 1
    assert "hold different dataset rows for items 0, 1, 2, 3, 4 and 35 more" in result.output
    assert "same dataset" in result.output


def test_no_common_completed_items_is_a_clear_error(root: Path) -> None:
    with pytest.raises(ConfigurationError, match="no completed items in common"):
        dotevals.compare("A", "DOWN", storage=f"json://{root / '.dotevals'}")


def test_missing_experiment_evaluation_or_cluster_column(root: Path) -> None:
    missing = cli(root, "compare", "A", "Bee")
    assert missing.exit_code == 1 and "no experiment 'Bee'" in missing.output
    assert "available experiments: A, AB, B, DOWN, SHIFTED" in missing.output
    no_eval = cli(root, "compare", "A", "B", "--evaluation", "eval_other")
    assert no_eval.exit_code == 1
    assert "no evaluation named 'eval_other' to pair" in no_eval.output
    no_column = cli(root, "compare", "A", "B", "--cluster", "topic")
    assert no_column.exit_code == 1
    assert "item 0 has no cluster column 'topic'" in no_column.output
    assert "['a', 'b', 'passage']" in no_column.output


def test_results_of_run_compare_directly(tmp_path: Path) -> None:
    from dotevals import foreach

    @foreach("x", list(range(12)))
    def eval_score(x: int, offset: float) -> float:
        return (x % 4) / 4 + offset

    url = f"json://{tmp_path}"
    a = dotevals.run(eval_score, "a", storage=url, progress=False, offset=0.0)
    b = dotevals.run(eval_score, "b", storage=url, progress=False, offset=0.1)
    (item,) = dotevals.compare(a, b).scores
    assert item.result.test == "paired t"
    assert item.result.diff.estimate == pytest.approx(0.1)
    assert item.result.diff.reason == "all 12 values are equal: no spread"


def test_baseline_gate_fails_a_significant_drop_with_its_interval(gated: Any) -> None:
    worse = gated["worse"]
    assert worse.returncode == 1, worse.stdout
    assert (
        "EvaluationFailed: eval_sums[local:alpha]: numeric_match is significantly below "
        "baseline 'B' (one-sided alpha 0.05): B - A -0.50 ["
    ) in worse.stdout
    assert "n=40 paired Agresti-Min 90%" in worse.stdout


def test_baseline_gate_passes_equal_scores_and_noise(gated: Any) -> None:
    assert gated["same"].returncode == 0, gated["same"].stdout
    assert gated["noisy"].returncode == 0, gated["noisy"].stdout  # one item worse
    loose = gated["loose"]  # the same one item, at a one-sided alpha of 0.45
    assert loose.returncode == 1
    assert "(one-sided alpha 0.45): B - A -0.03 [" in loose.stdout


def test_a_missing_baseline_or_a_bad_alpha_is_a_usage_error(gated: Any) -> None:
    lost = gated["lost"]
    assert lost.returncode == pytest.ExitCode.USAGE_ERROR
    assert "--baseline: no experiment 'nowhere' in json://.dotevals" in lost.stderr
    bad = gated["bad-alpha"]
    assert bad.returncode == pytest.ExitCode.USAGE_ERROR
    assert "0.7" in bad.stderr
