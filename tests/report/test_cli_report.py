"""``dotevals report`` and ``pytest --dotevals-report``: real stores, real pytest sessions."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from dotevals.cli import main
from dotevals.pricing import load_prices
from dotevals.report import build_view
from dotevals.results import Record
from dotevals.storage import JSONLStorage
from report.runs import ok, write_run


def _report(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["report", *args])
    return result.exit_code, result.output


def test_report_command_writes_one_file_for_several_experiments(tmp_path: Path) -> None:
    store = JSONLStorage(tmp_path / ".dotevals")
    write_run(store, "first", "eval_x", [ok(0, True)])
    write_run(store, "second", "eval_x", [ok(0, False)])
    out = tmp_path / "out" / "r.html"
    code, output = _report("first", "second", "-o", str(out), "--storage", store.url)
    assert (code, output) == (0, f"Report written to {out}\n")
    document = out.read_text()
    assert "<h2>eval_x</h2>" in document and "second - first" in document


def test_report_command_names_what_is_missing(tmp_path: Path) -> None:
    store = JSONLStorage(tmp_path / ".dotevals")
    write_run(store, "first", "eval_x", [ok(0, True)])
    out = str(tmp_path / "r.html")
    code, output = _report("frist", "-o", out, "--storage", store.url)
    assert code == 1 and "no experiment 'frist'" in output and "did you mean 'first'" in output
    code, output = _report("first", "--evaluation", "eval_y", "-o", out, "--storage", store.url)
    assert code == 1 and "no evaluation 'eval_y'" in output and "available: eval_x" in output
    assert not Path(out).exists()
    assert _report("-o", out)[0] == 2  # an experiment is required


TWO_MODELS = """
from dotevals import Result, foreach
from dotevals.evaluators import exact_match

@foreach("question,answer", [("What is 3 + 4?", "7"), ("What is 14 + 14?", "28")])
async def eval_sums(question, answer, model):
    ask = question if model.model == "a" else question.replace("+", "-")
    reply = await model.chat.completions.create(
        model=model.model, messages=[{"role": "user", "content": ask}]
    )
    text = reply.choices[0].message.content
    return Result(exact_match(text, answer), prompt=question, model_response=text)
"""


def test_pytest_option_writes_the_two_model_report(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(eval_two=TWO_MODELS)
    result = pytester.runpytest_subprocess(
        "--experiment",
        "two",
        *("--model", "local:a", "--model", "local:b"),
        "--dotevals-report",
        "out/report.html",
    )
    result.assert_outcomes(passed=2)
    path = pytester.path / "out" / "report.html"
    result.stdout.fnmatch_lines([f"dotevals report: {path}"])
    document = path.read_text()
    assert "<td>local:a</td><td>0.500</td>" in document  # 7 right, 29 wrong on purpose
    assert "<td>local:b</td><td>0.000</td>" in document
    assert "local:b - local:a" in document


def test_the_session_report_prices_usage_with_the_session_prices(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(eval_two=TWO_MODELS)
    pytester.makefile(".toml", prices='[models."a"]\ninput = 1000.0\noutput = 1000.0\n')
    result = pytester.runpytest_subprocess(
        *("--model", "local:a", "--prices", "prices.toml", "--dotevals-report", "r.html")
    )
    result.assert_outcomes(passed=1)
    document = (pytester.path / "r.html").read_text()
    data = re.search(r'<script type="application/json" id="dotevals-data">(.*?)</script>', document)
    assert data is not None
    rows = json.loads(data[1])["evaluations"][0]["rows"]
    assert all(row["c"][0]["$"] > 0 for row in rows)  # each row's tokens at $1000 / M


def test_ini_setting_writes_the_report_next_to_the_ini_file(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makeini("[pytest]\ndotevals_report = reports/session.html\n")
    pytester.makepyfile(
        eval_plain="from dotevals import foreach\n\n"
        "@foreach('x', [(1,), (2,)])\ndef eval_plain(x):\n    return x == 1\n"
    )
    monkeypatch.chdir(pytester.mkdir("sub"))
    result = pytester.runpytest_subprocess(str(pytester.path / "eval_plain.py"))
    result.assert_outcomes(passed=1)
    document = (pytester.path / "reports" / "session.html").read_text()
    assert "<h2>eval_plain</h2>" in document


def test_a_report_that_cannot_be_written_leaves_the_results(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        eval_plain="from dotevals import foreach\n\n"
        "@foreach('x', [(1,)])\ndef eval_plain(x):\n    return True\n"
    )
    pytester.mkdir("taken")
    result = pytester.runpytest_subprocess("--experiment", "kept", "--dotevals-report", "taken")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["dotevals report not written to *taken*"])
    assert (pytester.path / ".dotevals" / "kept" / "eval_plain.jsonl").exists()


def test_under_xdist_the_controller_writes_one_report(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        eval_two="from dotevals import foreach\n\n"
        "@foreach('x', [(1,), (2,)])\ndef eval_one(x):\n    return x == 1\n\n"
        "@foreach('x', [(1,), (2,)])\ndef eval_two(x):\n    return True\n"
    )
    result = pytester.runpytest_subprocess("-n", "2", "--dotevals-report", "r.html")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines([f"dotevals report: {pytester.path / 'r.html'}"])
    document = (pytester.path / "r.html").read_text()
    assert "<h2>eval_one</h2>" in document and "<h2>eval_two</h2>" in document


def test_prices_give_each_row_and_run_its_cost(tmp_path: Path) -> None:
    store = JSONLStorage(tmp_path / ".dotevals")
    usage = {"prompt_tokens": 1000, "completion_tokens": 500, "total_tokens": 1500}
    records = [
        Record.from_dict(ok(0, True).to_dict() | {"model": "m", "usage": usage}),
        Record.from_dict(ok(1, True).to_dict() | {"model": "unpriced", "usage": usage}),
    ]
    write_run(store, "paid", "eval_p", records)
    prices = tmp_path / "prices.toml"
    prices.write_text('[models."m"]\ninput = 2.0\noutput = 10.0\n')
    out = tmp_path / "r.html"
    code, _ = _report("paid", "-o", str(out), "--prices", str(prices), "--storage", store.url)
    assert code == 0
    (facts,) = build_view(store, ["paid"], prices=load_prices(prices)).evaluations[0].facts
    assert facts.cost == pytest.approx(0.007)  # 1000 x $2 + 500 x $10 per million tokens
    assert "<td>0.0070</td>" in out.read_text()
    code, output = _report("paid", "-o", str(out), "--prices", str(tmp_path / "none.toml"))
    assert code == 2 and "none.toml" in output
