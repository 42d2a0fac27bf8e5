"""Parallel pytest runs of one experiment: the lock between two sessions, and ``-n 2`` (xdist)
killed mid-run then resumed with every row exactly once, one store per evaluation."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest

from stores import records

BLOCKING = """
import time
from pathlib import Path
from dotevals import foreach

@foreach("x", range(10))
def eval_blocking(x):
    Path("started").touch()
    while x == 0 and not Path("go").exists():
        time.sleep(0.01)
    return True
"""

TWO_SLOW = """
import time
from pathlib import Path
from dotevals import foreach

def _log(name, x):
    with Path(f"calls-{name}.txt").open("a") as f:
        f.write(f"{x}\\n")
    time.sleep(0.01)

@foreach("x", range(120))
def eval_a(x):
    _log("a", x)
    return True

@foreach("x", range(120))
def eval_b(x):
    _log("b", x)
    return x % 2 == 0
"""


def _pytest(*args: str) -> list[str]:
    return [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args]


def _wait(done: object, proc: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 90
    while not done():  # type: ignore[operator]
        assert proc.poll() is None, f"the run ended before {what}"
        assert time.monotonic() < deadline, f"no {what} in time"
        time.sleep(0.02)


def test_second_session_waits_then_stops_naming_the_first(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(eval_blocking=BLOCKING)
    cmd = _pytest("eval_blocking.py", "--experiment", "shared", "-q")
    first = subprocess.Popen(cmd, cwd=pytester.path, stdout=subprocess.DEVNULL)
    _wait((pytester.path / "started").exists, first, "first row")

    args = ["--experiment", "shared", "eval_blocking.py", "--lock-timeout", "0.3"]
    second = pytester.runpytest_subprocess(*args)
    second.assert_outcomes(failed=1)
    second.stdout.fnmatch_lines([f"*EvaluationLockedError*being run by pid {first.pid} on*"])
    second.stdout.fnmatch_lines(["*after waiting 0.3 s this run stopped*"])

    (pytester.path / "go").touch()
    assert first.wait(timeout=60) == 0
    stored = records(pytester.path, "shared", "eval_blocking")
    assert sorted(stored) == list(range(10))


def test_xdist_run_killed_then_resumed_runs_each_row_once(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(eval_two=TWO_SLOW)
    cmd = _pytest("eval_two.py", "-n", "2", "--experiment", "par", "-q")
    proc = subprocess.Popen(
        cmd, cwd=pytester.path, stdout=subprocess.DEVNULL, start_new_session=True
    )

    def both_started() -> bool:
        return all(
            (pytester.path / ".dotevals" / "par" / f"eval_{n}.jsonl").exists()
            and len(records(pytester.path, "par", f"eval_{n}")) >= 20
            for n in "ab"
        )

    _wait(both_started, proc, "rows stored by both workers")
    os.killpg(proc.pid, signal.SIGKILL)  # the controller and its workers
    proc.wait()
    before = {n: set(records(pytester.path, "par", f"eval_{n}")) for n in "ab"}
    assert all(20 <= len(ids) < 120 for ids in before.values()), before
    for n in "ab":
        (pytester.path / f"calls-{n}.txt").write_text("")

    done = subprocess.run(cmd, cwd=pytester.path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout
    folders = [p for p in (pytester.path / ".dotevals").iterdir() if not p.name.startswith(".")]
    assert [p.name for p in folders] == ["par"]
    assert sorted(p.name for p in folders[0].iterdir()) == ["eval_a.jsonl", "eval_b.jsonl"]
    for n in "ab":
        calls = Counter(int(x) for x in (pytester.path / f"calls-{n}.txt").read_text().split())
        assert set(calls) == set(range(120)) - before[n], "a stored row ran again"
        assert max(calls.values()) == 1
        final = records(pytester.path, "par", f"eval_{n}")
        assert sorted(final) == list(range(120))
        assert all(r["error"] is None for r in final.values())
