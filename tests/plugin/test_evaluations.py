"""pytest sessions running evaluations: outcomes, storage, resume, collection."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from samples import PARAMETRIZED
from stores import read_store, records

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


BASIC = """
import pytest
from dotevals import foreach, Result
from dotevals.evaluators import exact_match

dataset = [("1+1", "2"), ("2+3", "5"), ("3+3", "7")]

@pytest.fixture
def my_model():
    return lambda q: str(eval(q))

@foreach("question,answer", dataset)
def eval_math(question, answer, my_model):
    return Result(exact_match(my_model(question), answer), prompt=question)

def test_ordinary():
    assert True
"""


def test_evaluation_runs_stores_and_summarises(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(eval_math=BASIC)
    result = pytester.runpytest("--experiment", "first")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*eval_math*3*0*exact_match.accuracy 0.667*", "*first*"])
    entries = read_store(pytester.path, "first", "eval_math")
    assert entries[0]["type"] == "header"
    assert entries[0]["dataset_fingerprint"].startswith("sha256:")
    assert entries[-1]["type"] == "summary"
    final = records(pytester.path, "first", "eval_math")
    assert [final[i]["scores"][0]["value"] for i in range(3)] == [True, True, False]
    assert final[0]["prompt"] == "1+1"
    assert final[0]["dataset_row"] == ["1+1", "2"]


def test_k_selects_evaluations_and_junitxml(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(eval_math=BASIC)
    result = pytester.runpytest("-k", "not ordinary", "--junitxml=out.xml", "--experiment", "k")
    result.assert_outcomes(passed=1, deselected=1)
    assert "eval_math" in (pytester.path / "out.xml").read_text()


RESUME = """
import os
from pathlib import Path
from dotevals import foreach

CALLS = Path("calls.txt")

@foreach("x", range(6))
def eval_flaky(x):
    with CALLS.open("a") as f:
        f.write(f"{x}\\n")
    if x == 3 and not Path("fixed").exists():
        raise RuntimeError("model unavailable")
    return x % 2 == 0
"""


def test_resume_reruns_only_errored_rows(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(eval_flaky=RESUME)
    pytester.runpytest("--experiment", "r").assert_outcomes(passed=1)
    assert records(pytester.path, "r", "eval_flaky")[3]["error"]["type"] == "RuntimeError"
    (pytester.path / "fixed").touch()
    (pytester.path / "calls.txt").write_text("")
    pytester.runpytest("--experiment", "r").assert_outcomes(passed=1)
    assert (pytester.path / "calls.txt").read_text().split() == ["3"]
    final = records(pytester.path, "r", "eval_flaky")
    assert sorted(final) == list(range(6))
    assert all(r["error"] is None for r in final.values())


def test_every_row_errored_fails_the_item(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        eval_broken="""
        from dotevals import foreach
        @foreach("x", [1, 2])
        def eval_broken(x):
            raise FileNotFoundError("no such model file")
        """
    )
    result = pytester.runpytest("--experiment", "b")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*every row errored (FileNotFoundError x2)*"])
    final = records(pytester.path, "b", "eval_broken")
    assert final[0]["attempts"] == 1  # not a transient error: no retries
    assert "Traceback" in final[0]["error"]["traceback"]


def test_threshold(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        eval_th="""
        from dotevals import foreach
        @foreach("x", range(10), threshold={"accuracy": 0.8})
        def eval_low(x):
            return x < 5
        @foreach("x", range(10), threshold={"eval_high.accuracy": 0.5})
        def eval_high(x):
            return x < 9
        """
    )
    result = pytester.runpytest("--experiment", "t")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*accuracy = 0.5000 is below the threshold 0.8*"])


def test_columns_not_matching_parameters_is_a_collection_error(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        eval_cols="""
        from dotevals import foreach
        @foreach("question,answer", [("a", "b")])
        def eval_cols(question, reply):
            return True
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*eval_cols() does not take column(s) ?'answer'?*"])


def test_bad_rows_and_bad_returns_are_row_errors(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        eval_rows="""
        from dotevals import foreach
        @foreach("a,b", [(1, 2), (1, 2, 3), {"a": 1}, (4, 5)])
        def eval_rows(a, b):
            return "not a score" if a == 4 else True
        """
    )
    pytester.runpytest("--experiment", "w").assert_outcomes(passed=1)
    final = records(pytester.path, "w", "eval_rows")
    assert final[0]["error"] is None
    assert "3 field(s)" in final[1]["error"]["message"]
    assert "no key(s) ['b']" in final[2]["error"]["message"]
    assert "returned 'not a score' (str)" in final[3]["error"]["message"]


def test_samples_stops_reading_the_dataset(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        eval_gen="""
        from dotevals import foreach
        def rows():
            for i in range(3):
                yield (i,)
            raise AssertionError("read past --samples")
        @foreach("x", rows())
        def eval_gen(x):
            return True
        """
    )
    pytester.runpytest("--samples", "3", "--experiment", "s").assert_outcomes(passed=1)
    assert len(records(pytester.path, "s", "eval_gen")) == 3


def test_changed_dataset_is_refused(pytester: pytest.Pytester) -> None:
    source = """
        from dotevals import foreach
        @foreach("x", {rows})
        def eval_d(x):
            return True
        """
    pytester.makepyfile(eval_d=source.format(rows="[1, 2, 3]"))
    pytester.runpytest("--experiment", "d").assert_outcomes(passed=1)
    pytester.makepyfile(eval_d=source.format(rows="[1, 5, 3]"))
    result = pytester.runpytest("--experiment", "d")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*dataset of 'eval_d' changed*row 1 was 2 and is now 5*"])


def test_async_fixtures_share_one_loop_with_the_evaluation(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        eval_loop="""
        import asyncio
        import pytest
        from dotevals import foreach

        @pytest.fixture(scope="session")
        async def session_client():
            return asyncio.get_running_loop()

        @pytest.fixture
        async def per_test(session_client):
            yield asyncio.get_running_loop()

        @foreach("x", range(20))
        async def eval_loop(x, session_client, per_test):
            await asyncio.sleep(0.001)
            return session_client is per_test is asyncio.get_running_loop()
        """
    )
    result = pytester.runpytest("--experiment", "l")
    result.assert_outcomes(passed=1)
    final = records(pytester.path, "l", "eval_loop")
    assert all(r["scores"][0]["value"] is True for r in final.values())


def test_indirect_parametrization_ids(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(eval_param=PARAMETRIZED)
    result = pytester.runpytest("-v", "--experiment", "p")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*eval_param?small? PASSED*", "*eval_param?org/large? PASSED*"])
    # Only the lines about this evaluation: other plugins' headers may print
    # "None" (hypothesis does, under a CI profile).
    result.stdout.no_fnmatch_line("*eval_param*None*")
    assert len(records(pytester.path, "p", "eval_param[small]")) == 2
    assert len(records(pytester.path, "p", "eval_param[org%2Flarge]")) == 2


def store_of(root: Path, experiment: str, evaluation: str) -> Path:
    """The store file whose header names ``evaluation``, whatever its encoded file name."""
    folder = root / ".dotevals" / experiment
    found = [
        path
        for path in folder.iterdir()
        if json.loads(path.read_text().splitlines()[0]).get("evaluation") == evaluation
    ]
    assert len(found) == 1, sorted(p.name for p in folder.iterdir())
    return found[0]


def record_lines(path: Path) -> list[int]:
    """The item ids of the record lines of a store file, one per line, in file order."""
    entries = [json.loads(line) for line in path.read_text().splitlines()]
    return [e["item_id"] for e in entries if "item_id" in e]


SLASH = """
from pathlib import Path
import pytest
from dotevals import foreach

@pytest.mark.parametrize("model", ["org/model"])
@foreach("x", range(4))
def eval_slash(x, model):
    with Path("calls.txt").open("a") as f:
        f.write(f"{x}\\n")
    if x == 2 and not Path("fixed").exists():
        raise ConnectionRefusedError("model server down")
    return True
"""


def test_resume_of_a_name_with_a_slash_reruns_no_completed_row(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(eval_slash=SLASH)
    calls = pytester.path / "calls.txt"
    pytester.runpytest("--max-retries", "0", "--experiment", "s").assert_outcomes(passed=1)
    path = store_of(pytester.path, "s", "eval_slash[org/model]")
    assert path.parent == pytester.path / ".dotevals" / "s"  # the "/" made no folder
    assert [p.name for p in path.parent.iterdir()] == [path.name]
    assert sorted(record_lines(path)) == [0, 1, 2, 3]
    (pytester.path / "fixed").touch()
    calls.write_text("")
    pytester.runpytest("--max-retries", "0", "--experiment", "s").assert_outcomes(passed=1)
    assert calls.read_text().split() == ["2"]
    lines = record_lines(path)
    assert sorted(lines) == [0, 1, 2, 2, 3]  # one new line: the errored row's
    assert records(pytester.path, "s", path.stem)[2]["error"] is None
    calls.write_text("")
    pytester.runpytest("--experiment", "s").assert_outcomes(passed=1)
    assert calls.read_text() == ""
    assert record_lines(path) == lines


def test_batch_records_per_row(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        eval_batch="""
        from dotevals import batch, Result, Score
        from dotevals.metrics import accuracy

        @batch("q,a", [(i, i % 2) for i in range(5)], batch_size=2)
        def eval_batch(q, a):
            assert len(q) <= 2
            return [Result(Score("ok", x % 2 == y, [accuracy()])) for x, y in zip(q, a)]

        @batch("q", range(3), batch_size=3)
        def eval_one(q):
            return True
        """
    )
    pytester.runpytest("--experiment", "b").assert_outcomes(passed=2)
    assert len(records(pytester.path, "b", "eval_batch")) == 5
    assert len(records(pytester.path, "b", "eval_one")) == 3


def test_strict_asyncio_mode_set_by_the_user_is_kept(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nasyncio_mode = strict\n")
    pytester.makepyfile(
        eval_strict="""
        import asyncio
        from dotevals import foreach
        @foreach("x", [1])
        async def eval_strict(x):
            await asyncio.sleep(0)
            return True
        """
    )
    result = pytester.runpytest("--experiment", "s")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*mode=Mode.STRICT*"])


def test_unknown_storage_scheme_lists_known(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(eval_math=BASIC)
    result = pytester.runpytest("--storage", "s3://bucket")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*unknown storage scheme 's3'*json://*"])


def test_torn_store_line_is_skipped_with_a_warning(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(eval_flaky=RESUME)
    pytester.runpytest("--experiment", "torn").assert_outcomes(passed=1)
    path = pytester.path / ".dotevals" / "torn" / "eval_flaky.jsonl"
    with path.open("a") as f:
        f.write('{"item_id": 9, "dataset_r')
    (pytester.path / "fixed").touch()
    result = pytester.runpytest("--experiment", "torn", "-W", "default")
    result.assert_outcomes(passed=1, warnings=1)
    result.stdout.fnmatch_lines(["*eval_flaky.jsonl:*unreadable line skipped*"])
    assert len(records(pytester.path, "torn", "eval_flaky")) == 6


def test_xdist_workers_share_one_experiment_and_summary(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        eval_par="""
        from dotevals import foreach
        @foreach("x", range(5))
        def eval_a(x):
            return True
        @foreach("x", range(5))
        def eval_b(x):
            return x > 0
        """
    )
    result = pytester.runpytest_subprocess("-n", "2", "-p", "no:benchmark")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*results: experiment unnamed-*"])
    for name in ("eval_a", "eval_b"):
        result.stdout.fnmatch_lines([f"*{name}*5*0*"])
    root = pytester.path / ".dotevals"
    experiments = [p for p in root.iterdir() if not p.name.startswith(".")]  # .locks
    assert len(experiments) == 1
    assert sorted(p.name for p in experiments[0].iterdir()) == ["eval_a.jsonl", "eval_b.jsonl"]


def test_cache_option_reports_hits_and_misses(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        eval_cached="""
        import pytest
        from dotevals import foreach
        from dotevals.providers._client import make_client
        from dotevals.testing import ServerProcess

        @pytest.fixture(scope="session")
        def server():
            with ServerProcess() as process:
                yield process

        @pytest.fixture
        async def client(server):
            # the server's port changes between runs: name it for the cache
            headers = {"x-dotevals-cache-scope": "test-server"}
            client = make_client(
                "m", base_url=server.base_url, api_key="x", default_headers=headers
            )
            yield client
            await client.close()

        @foreach("q", ["What is 1+1?", "What is 2+2?"])
        async def eval_cached(q, client):
            reply = await client.chat.completions.create(
                model=client.model, messages=[{"role": "user", "content": q}]
            )
            return reply.choices[0].message.content in ("2", "4")
        """
    )
    first = pytester.runpytest_subprocess("--dotevals-cache-path", "c.sqlite", "-p", "no:benchmark")
    first.assert_outcomes(passed=1)
    first.stdout.fnmatch_lines(["*eval_cached*2/2*", "*response cache c.sqlite: 0 hits, 2 misses*"])
    second = pytester.runpytest_subprocess(
        "--cache", "-o", "dotevals_cache_path=c.sqlite", "-p", "no:benchmark"
    )
    second.stdout.fnmatch_lines(["*response cache c.sqlite: 2 hits, 0 misses*"])


def test_return_types_are_stored_through_the_plugin(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        eval_returns="""
        from dotevals import foreach, Result, Score
        from dotevals.metrics import accuracy

        @foreach("x", range(4))
        def eval_text(x):
            return Result(f"answer {x}")

        @foreach("x", range(4))
        def eval_int(x):
            return x

        @foreach("x", range(4))
        def eval_float(x):
            return x / 4

        @foreach("x", range(4))
        def eval_score(x):
            return Score("parity", x % 2 == 0, [accuracy()], {"x": x})
        """
    )
    result = pytester.runpytest("--experiment", "ret")
    result.assert_outcomes(passed=4)
    text = records(pytester.path, "ret", "eval_text")
    assert [text[i]["model_response"] for i in range(4)] == [f"answer {i}" for i in range(4)]
    assert all(r["scores"] == [] and r["error"] is None for r in text.values())
    for name, values, mean in [
        ("eval_int", [0, 1, 2, 3], 1.5),
        ("eval_float", [0, 0.25, 0.5, 0.75], 0.375),
    ]:
        final = records(pytester.path, "ret", name)
        assert [final[i]["scores"] for i in range(4)] == [
            [{"name": name, "value": v, "metrics": ["mean"], "metadata": {}}] for v in values
        ]
        assert all(r["model_response"] is None for r in final.values())
        (summary,) = [
            e for e in read_store(pytester.path, "ret", name) if e.get("type") == "summary"
        ]
        assert {s: sorted(ms) for s, ms in summary["metrics"].items()} == {name: ["mean"]}
        assert summary["metrics"][name]["mean"]["value"] == pytest.approx(mean)
    score = records(pytester.path, "ret", "eval_score")
    assert [score[i]["scores"] for i in range(4)] == [
        [{"name": "parity", "value": i % 2 == 0, "metrics": ["accuracy"], "metadata": {"x": i}}]
        for i in range(4)
    ]
    result.stdout.fnmatch_lines(
        ["*eval_int *4/4*eval_int.mean 1.500*", "*eval_score *4/4*parity.accuracy 0.500*"]
    )


def test_a_file_given_by_path_is_collected_whatever_its_name(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        mychecks="""
        from dotevals import foreach

        @foreach("x", range(3))
        def eval_checks(x):
            return x >= 0

        def test_plain():
            assert True

        def check_not_collected():
            raise AssertionError("only eval_* and test_* functions are collected")
        """
    )
    # not named like a test file: a directory run does not collect it
    assert pytester.runpytest().ret == pytest.ExitCode.NO_TESTS_COLLECTED
    result = pytester.runpytest("mychecks.py", "-v", "--experiment", "path")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        ["mychecks.py::eval_checks PASSED*", "mychecks.py::test_plain PASSED*"]
    )
    assert len(records(pytester.path, "path", "eval_checks")) == 3


def wilson(p: float, n: int, z: float = 1.96) -> tuple[float, float]:
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * (p * (1 - p) / n + z * z / (4 * n * n)) ** 0.5 / (1 + z * z / n)
    return centre - half, centre + half


def test_summary_table_rows_errors_ci_and_location(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "120")  # wide enough that each figure stays on one line
    pytester.makepyfile(
        eval_table="""
        from dotevals import foreach

        @foreach("x", range(4))
        def eval_acc(x):
            if x == 3:
                raise ValueError("unparseable answer")
            return x < 2

        def rows():
            yield from range(3)

        @foreach("x", rows())
        def eval_gen(x):
            return x

        @foreach("x", range(15))
        def eval_stops(x):
            raise PermissionError("401 bad API key")
        """
    )
    result = pytester.runpytest("--experiment", "tab", "--storage", "sqlite://results.db")
    result.assert_outcomes(passed=2, failed=1)
    low, high = wilson(0.5, 4)  # the errored row counts as a failure: 2 of 4
    ci = f"[[]{low:.3f}, {high:.3f}[]]"  # fnmatch: [[] and []] match [ and ]
    result.stdout.fnmatch_lines(
        [
            "*┃ evaluation *┃ rows *┃ errors *┃ metrics *┃ time *┃",
            f"│ eval_acc *│ 4/4 *│ 1 *│ eval_acc.accuracy 0.500 {ci} n=4 Wilson 95% *│ *s │",
            # a generator has no length: the rows done alone; mean of 0, 1, 2 (no skew) with
            # its t interval: 1 ± t(0.975, 2 df) * sqrt(1/3) = 1 ± 4.303 * 0.577
            "│ eval_gen *│ 3 *│ 0 *│ eval_gen.mean 1.000 [[]-1.484, 3.484[]] n=3 "
            "skew-corrected t 95% *│ *s │",
            # stopped early after 10 identical errors: done/total tells
            "│ eval_stops *│ 10/15 *│ 10 *│ - *│ *s │",
            "results: experiment tab in sqlite://results.db (see: dotevals show tab)",
        ]
    )
