"""``dotevals compare`` and ``dotevals.compare`` over stores written by real pytest runs.

Two models of the local test server (real subprocess, real openai SDK over HTTP): ``alpha``
is asked the sums, and gets those the server's model gets wrong on purpose wrong (a multiple
of 7 with both operands above 10); ``beta`` is asked to echo the answer and gets all right.
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
ROWS = [(a + SHIFT, b, a % 5) for a in range(8, 28, 2) for b in (7, 14, 21)]

@foreach("a,b,passage", ROWS)
async def eval_sums(a, b, passage, model):
    if os.environ.get("FAIL"):
        raise RuntimeError("model down")
    question = f"What is {a} + {b}?" if model.model == "alpha" else f"echo: {a + b}"
    response = await model.chat.completions.create(
        model=model.model, messages=[{"role": "user", "content": question}]
    )
    reply = response.choices[0].message.content
    return Result(numeric_match(reply, str(a + b)), prompt=question, model_response=reply)
"""
ROWS = [(a, b) for a in range(8, 28, 2) for b in (7, 14, 21)]
#: Items alpha gets wrong: the local model's off-by-one on multiples of 7 above 10.
ALPHA_WRONG = sum(1 for a, b in ROWS if (a + b) % 7 == 0 and a > 10 and b > 10)


def _pytest(root: Path, experiment: str, *models: str, **env: str) -> None:
    args = ["--experiment", experiment, *(f"--model=local:{m}" for m in models)]
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "eval_sums.py", *args],
        cwd=root,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode in (0, 1), done.stdout + done.stderr


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store with: A (alpha), B (beta), AB (both in one session), SHIFTED, DOWN."""
    path = tmp_path_factory.mktemp("compare")
    (path / "eval_sums.py").write_text(EVAL)
    runs: list[tuple[str, tuple[str, ...], dict[str, str]]] = [
        ("A", ("alpha",), {}),
        ("B", ("beta",), {}),
        ("AB", ("alpha", "beta"), {}),
        ("SHIFTED", ("beta",), {"SHIFT": "1"}),
        ("DOWN", ("beta",), {"FAIL": "1"}),
    ]
    with ThreadPoolExecutor(len(runs)) as pool:  # separate experiments: separate files
        for done in [pool.submit(_pytest, path, e, *m, **env) for e, m, env in runs]:
            done.result()
    return path


def cli(root: Path, *args: str) -> Any:
    runner = CliRunner()
    return runner.invoke(main, [*args, "--storage", f"json://{root / '.dotevals'}"])


def test_compare_pairs_two_experiments_by_item_and_tests_the_difference(root: Path) -> None:
    result = cli(root, "compare", "A", "B")
    assert result.exit_code == 0, result.output
    n = len(ROWS)
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
    assert (item["a_only"], item["b_only"], item["n"]) == (0, ALPHA_WRONG, len(ROWS))
    assert item["mean_b"] == 1.0
    assert item["mean_a"] == pytest.approx(1 - ALPHA_WRONG / len(ROWS))
    assert item["diff"]["level"] == 0.9 and item["diff"]["lo"] < item["diff"]["hi"]
    assert item["correlation"] is None  # B is constant: no correlation to state
    assert item["detectable"] > 0


def test_one_sessions_two_models_compare_and_cluster(root: Path) -> None:
    result = cli(root, "compare", "AB", "AB", "--evaluation", "eval_sums", "--cluster", "passage")
    assert result.exit_code == 0, result.output
    assert "(5 clusters) paired cluster t 95%" in result.output
    assert "cluster-robust paired t p=" in result.output


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
    assert "hold different dataset rows for items 0, 1, 2, 3, 4 and 25 more" in result.output
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
