"""pytest sessions: -x, --lf, rows in flight (concurrency, threads), retries, limit history."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from stores import read_store, records

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def summaries(root: Path, experiment: str, evaluation: str) -> list[dict[str, Any]]:
    entries = read_store(root, experiment, evaluation)
    return [e for e in entries if e.get("type") == "summary"]


def peak(root: Path, experiment: str, evaluation: str) -> int:
    """The most rows in flight, as the rows of ``IN_FLIGHT`` measured it."""
    final = records(root, experiment, evaluation)
    assert final and all(r["error"] is None for r in final.values())
    return max(r["scores"][0]["value"] for r in final.values())


# -- bad values --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("option", "value", "converter"),
    [
        ("max-concurrency", "0", "_positive"),
        ("max-retries", "-1", "_non_negative"),
        ("lock-timeout", "nan", "_seconds"),
        ("baseline-alpha", "0.5", "_alpha"),
        ("runner", "spark", "_runner_name"),
    ],
)
def test_bad_option_value_is_a_usage_error_naming_the_option(
    pytester: pytest.Pytester, option: str, value: str, converter: str
) -> None:
    result = pytester.runpytest(f"--dotevals-{option}", value)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [f"*argument --dotevals-{option}: invalid {converter} value: {value!r}*"]
    )
    pytester.makeini(f"[pytest]\ndotevals_{option.replace('-', '_')} = {value}\n")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*dotevals_{option.replace('-', '_')} = {value!r} is not valid*"])


def test_option_values_at_their_bounds_are_taken(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_ok(): pass")
    bounds = ["--dotevals-max-concurrency", "1", "--dotevals-max-retries", "0"]
    bounds += ["--dotevals-lock-timeout", "0", "--dotevals-runner", " Local "]
    pytester.runpytest(*bounds).assert_outcomes(passed=1)


# -- -x and --lf ---------------------------------------------------------------------------

STOP_FIRST = """
from pathlib import Path
from dotevals import foreach

@foreach("x", range(4), threshold={{"accuracy": 0.9}})
def eval_first(x):
    {body}

@foreach("x", range(4))
def eval_second(x):
    Path("second-ran").touch()
    return True
"""


@pytest.mark.parametrize(
    "body",
    ["return x < 2", "raise RuntimeError('model crashed')"],
    ids=["threshold-missed", "every-row-errored"],
)
def test_x_stops_after_the_first_failed_evaluation(pytester: pytest.Pytester, body: str) -> None:
    pytester.makepyfile(eval_stop=STOP_FIRST.format(body=body))
    result = pytester.runpytest("-x", "--experiment", "x")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*stopping after 1 failures*"])
    assert not (pytester.path / "second-ran").exists()
    assert not (pytester.path / ".dotevals" / "x" / "eval_second.jsonl").exists()
    result.stdout.no_fnmatch_line("*eval_second*")
    # without -x the second evaluation runs: the check above can fail
    pytester.runpytest("--experiment", "nox").assert_outcomes(passed=1, failed=1)
    assert (pytester.path / "second-ran").exists()


LAST_FAILED = """
from pathlib import Path
from dotevals import foreach

def log(name):
    with Path("calls.txt").open("a") as f:
        f.write(name + "\\n")

@foreach("x", range(3), threshold={"accuracy": 1.0})
def eval_fails(x):
    log("eval_fails")
    return x < 2

@foreach("x", range(3))
def eval_passes(x):
    log("eval_passes")
    return True
"""


def test_lf_reruns_only_the_failed_evaluation(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(eval_lf=LAST_FAILED)
    calls = pytester.path / "calls.txt"
    pytester.runpytest("--experiment", "one").assert_outcomes(passed=1, failed=1)
    assert sorted(set(calls.read_text().split())) == ["eval_fails", "eval_passes"]
    calls.write_text("")
    result = pytester.runpytest("--lf", "--experiment", "two")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["run-last-failure: rerun previous 1 failure*"])
    assert calls.read_text().split() == ["eval_fails"] * 3
    assert (pytester.path / ".dotevals" / "two" / "eval_fails.jsonl").exists()
    assert not (pytester.path / ".dotevals" / "two" / "eval_passes.jsonl").exists()
    # the same experiment again: the stored rows still miss the threshold, none runs again
    calls.write_text("")
    result = pytester.runpytest("--lf", "--experiment", "one")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*accuracy = 0.6667 is below the threshold 1.0*"])
    assert calls.read_text() == ""


# -- rows in flight --------------------------------------------------------------------------

IN_FLIGHT = """
import asyncio
from dotevals import foreach
from dotevals.concurrency import Fixed

state = {}

async def measure(key):
    now, top = state.get(key, (0, 0))
    state[key] = (now + 1, max(top, now + 1))
    await asyncio.sleep(0.01)
    now, top = state[key]
    state[key] = (now - 1, top)
    return top  # the most rows in flight so far; the largest stored value is the peak
"""


def in_flight_eval(name: str, rows: int) -> str:
    """An evaluation file: async ``eval_NAME`` over ``rows`` rows, each measuring the peak."""
    return IN_FLIGHT + (
        f'\n@foreach("x", range({rows}))\n'
        f"async def eval_{name}(x):\n"
        f'    return await measure("{name}")\n'
    )


def test_max_concurrency_caps_adaptive_rows_in_flight(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(eval_cap=in_flight_eval("cap", 40))
    pytester.runpytest("--max-concurrency", "4", "--experiment", "cap").assert_outcomes(passed=1)
    assert peak(pytester.path, "cap", "eval_cap") == 4
    # the default adaptive start (16) is more: the option is what capped it
    pytester.runpytest("--experiment", "default").assert_outcomes(passed=1)
    assert peak(pytester.path, "default", "eval_cap") >= 16


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (["--concurrency", "3"], 3),
        (["--concurrency", "sequential"], 1),
        (["--concurrency", "adaptive", "--max-concurrency", "5"], 5),
        (["--concurrency", "10", "--max-concurrency", "3"], 3),
    ],
    ids=["fixed", "sequential", "adaptive-capped", "fixed-capped"],
)
def test_concurrency_option_sets_rows_in_flight(
    pytester: pytest.Pytester, options: list[str], expected: int
) -> None:
    pytester.makepyfile(eval_conc=in_flight_eval("conc", 30))
    pytester.runpytest(*options, "--experiment", "c").assert_outcomes(passed=1)
    assert peak(pytester.path, "c", "eval_conc") == expected


def test_per_evaluation_concurrency_wins_over_the_option(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        eval_own=IN_FLIGHT
        + """
@foreach("x", range(20), concurrency=2)
async def eval_two(x):
    return await measure("two")

@foreach("x", range(20), concurrency=Fixed(3))
async def eval_three(x):
    return await measure("three")

@foreach("x", range(20))
async def eval_option(x):
    return await measure("option")
"""
    )
    pytester.runpytest("--concurrency", "5", "--experiment", "o").assert_outcomes(passed=3)
    assert peak(pytester.path, "o", "eval_two") == 2
    assert peak(pytester.path, "o", "eval_three") == 3
    assert peak(pytester.path, "o", "eval_option") == 5


def test_unknown_concurrency_value_fails_naming_the_accepted_ones(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(eval_bad=in_flight_eval("bad", 3))
    result = pytester.runpytest("--concurrency", "fast", "--experiment", "b")
    assert result.ret == pytest.ExitCode.USAGE_ERROR  # refused before any evaluation runs
    result.stderr.fnmatch_lines(["*--concurrency*unknown concurrency 'fast'*number*adaptive*"])
    assert not (pytester.path / ".dotevals").exists()


THREADS = """
import threading
import time
from dotevals import foreach, Result, Score
from dotevals.metrics import mean

lock = threading.Lock()
states = {"threads": {"now": 0, "peak": 0}, "inline": {"now": 0, "peak": 0}}
barrier = threading.Barrier(3, timeout=20)  # breaks (rows error) unless 3 rows run at once

def measure(key, wait):
    state = states[key]
    with lock:
        state["now"] += 1
        state["peak"] = max(state["peak"], state["now"])
    try:
        if wait:
            barrier.wait()
        else:
            time.sleep(0.005)  # room for a second row to start, were rows not inline
    finally:
        with lock:
            state["now"] -= 1
    main = threading.current_thread() is threading.main_thread()
    thread = "main" if main else str(threading.get_ident())
    return Result(Score("peak", state["peak"], [mean()]), model_response=thread)

@foreach("x", range(9), threads=3)
def eval_threads(x):
    return measure("threads", wait=True)

@foreach("x", range(9))
def eval_inline(x):
    return measure("inline", wait=False)
"""


def test_threads_run_sync_rows_in_that_many_threads(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(eval_threads=THREADS)
    pytester.runpytest("--experiment", "t").assert_outcomes(passed=2)
    assert peak(pytester.path, "t", "eval_threads") == 3
    threads = {r["model_response"] for r in records(pytester.path, "t", "eval_threads").values()}
    assert "main" not in threads
    assert len(threads) >= 3
    # without threads=, sync rows run inline: one at a time, in the main thread
    assert peak(pytester.path, "t", "eval_inline") == 1
    inline = {r["model_response"] for r in records(pytester.path, "t", "eval_inline").values()}
    assert inline == {"main"}


# -- retries ---------------------------------------------------------------------------------

RETRY = """
import asyncio
from pathlib import Path
import httpx
import openai
from dotevals import foreach
from dotevals.concurrency import Fixed

LOG = Path("log.txt")
attempts = {{}}

def log(line):
    with LOG.open("a") as f:
        f.write(line + "\\n")

def rate_limited(kind):
    request = httpx.Request("POST", "https://api.example.com/v1/chat/completions")
    if kind == "httpx":
        response = httpx.Response(429, headers={{"Retry-After": "1"}}, request=request)
        return httpx.HTTPStatusError("429 Too Many Requests", request=request, response=response)
    if kind == "openai":
        response = httpx.Response(429, headers={{"retry-after-ms": "800"}}, request=request)
        return openai.RateLimitError("rate limited", response=response, body=None)
    error = httpx.ConnectError("connection refused", request=request)
    error.retry_after = 1.0
    return error

@foreach("x", range(5), concurrency={concurrency})
async def eval_retry(x):
    n = attempts[x] = attempts.get(x, 0) + 1
    log(f"start {{x}} {{n}}")
    await asyncio.sleep(0)
    if x == 0 and n == 1:
        log("fail 0")
        raise rate_limited({kind!r})
    log(f"done {{x}}")
    return True
"""


@pytest.mark.parametrize(
    ("kind", "concurrency"),
    [("httpx", "1"), ("openai", "Fixed(1)"), ("connect", "1")],
    ids=["httpx-429-retry-after", "openai-rate-limit-retry-after-ms", "httpx-connect-error"],
)
def test_retry_sleep_does_not_hold_a_concurrency_slot(
    pytester: pytest.Pytester, kind: str, concurrency: str
) -> None:
    pytester.makepyfile(eval_retry=RETRY.format(kind=kind, concurrency=concurrency))
    pytester.runpytest("--experiment", "r").assert_outcomes(passed=1)
    log = (pytester.path / "log.txt").read_text().splitlines()
    retried = log.index("start 0 2")
    assert log.index("fail 0") < log.index("start 1 1")
    assert all(log.index(f"done {x}") < retried for x in range(1, 5))
    in_flight = top = 0
    for line in log:
        in_flight += 1 if line.startswith("start") else -1
        top = max(top, in_flight)
    assert top == 1  # concurrency 1 held throughout
    final = records(pytester.path, "r", "eval_retry")
    assert final[0]["attempts"] == 2 and final[0]["error"] is None
    assert all(final[x]["attempts"] == 1 for x in range(1, 5))
    lines = [e["item_id"] for e in read_store(pytester.path, "r", "eval_retry") if "item_id" in e]
    assert lines == [1, 2, 3, 4, 0]  # stored as they completed: the retried row last


def test_max_retries_zero_records_a_transient_error_at_once(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(eval_retry=RETRY.format(kind="httpx", concurrency="1"))
    pytester.runpytest("--max-retries", "0", "--experiment", "n").assert_outcomes(passed=1)
    assert "start 0 2" not in (pytester.path / "log.txt").read_text().splitlines()
    final = records(pytester.path, "n", "eval_retry")
    assert final[0]["attempts"] == 1
    assert final[0]["error"]["type"] == "HTTPStatusError"


# -- the limit's history -------------------------------------------------------------------


def test_summary_stores_the_concurrency_limit_history(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(eval_hist=in_flight_eval("hist", 30))
    # adaptive starts at 16 and grows after its first window of 16 successes, up to the cap;
    # the 14 rows left are fewer than the next window (24): exactly one change
    pytester.runpytest("--max-concurrency", "24", "--experiment", "h").assert_outcomes(passed=1)
    (summary,) = summaries(pytester.path, "h", "eval_hist")
    history = summary["concurrency"]
    assert [limit for _, limit in history] == [16, 24]
    assert history[0][0] == 0.0 and history[1][0] >= 0.0
    assert 16 <= peak(pytester.path, "h", "eval_hist") <= 24
    # a fixed limit is one entry; each run appends its own summary
    pytester.runpytest("--concurrency", "3", "--experiment", "f").assert_outcomes(passed=1)
    (fixed,) = summaries(pytester.path, "f", "eval_hist")
    assert fixed["concurrency"] == [[0.0, 3]]
    assert fixed["total"] == 30 and fixed["ran"] == 30
    pytester.runpytest("--concurrency", "3", "--experiment", "f").assert_outcomes(passed=1)
    again = summaries(pytester.path, "f", "eval_hist")
    assert len(again) == 2 and again[1]["ran"] == 0 and again[1]["concurrency"] == [[0.0, 3]]
