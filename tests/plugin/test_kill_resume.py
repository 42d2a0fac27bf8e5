"""A pytest run killed with SIGKILL mid-evaluation resumes with every row exactly once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

EVAL = """
import time
from pathlib import Path
from dotevals import foreach

@foreach("x", range(400))
def eval_slow(x):
    with Path("calls.txt").open("a") as f:
        f.write(f"{x}\\n")
    time.sleep(0.005)
    return x % 3 == 0
"""


def _final_records(path: Path) -> dict[int, dict[str, object]]:
    final: dict[int, dict[str, object]] = {}
    for line in path.read_text().splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if "item_id" in entry:
            final[entry["item_id"]] = entry
    return final


def test_sigkill_then_resume_runs_each_row_once(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(eval_slow=EVAL)
    store = pytester.path / ".dotevals" / "k" / "eval_slow.jsonl"
    cmd = [sys.executable, "-m", "pytest", "eval_slow.py", "--experiment", "k", "-q"]
    proc = subprocess.Popen(cmd, cwd=pytester.path, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if store.exists() and len(_final_records(store)) >= 100:
            break
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    stored_before = set(_final_records(store))
    assert 100 <= len(stored_before) < 400
    calls_before = (pytester.path / "calls.txt").read_text().split()

    (pytester.path / "calls.txt").write_text("")
    done = subprocess.run(cmd, cwd=pytester.path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout
    calls_after = [int(x) for x in (pytester.path / "calls.txt").read_text().split()]
    assert not stored_before & set(calls_after), "a completed row ran again"
    assert sorted(calls_after) == sorted(set(range(400)) - stored_before)
    # at most the row in flight at the kill ran in both sessions
    assert len(set(map(int, calls_before)) & set(calls_after)) <= 1
    final = _final_records(store)
    assert sorted(final) == list(range(400))
    assert all(r["error"] is None for r in final.values())


ASYNC_EVAL = """
import asyncio
from dotevals import foreach

@foreach("x", range(2000))
async def eval_slow_async(x):
    await asyncio.sleep(0.05)
    return True
"""


def test_ctrl_c_stops_cleanly_with_completed_rows_stored(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(eval_slow_async=ASYNC_EVAL)
    store = pytester.path / ".dotevals" / "int" / "eval_slow_async.jsonl"
    cmd = [sys.executable, "-m", "pytest", "eval_slow_async.py", "--experiment", "int"]
    cmd += ["--concurrency", "4"]
    proc = subprocess.Popen(cmd, cwd=pytester.path, stdout=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if store.exists() and len(_final_records(store)) >= 20:
            break
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == pytest.ExitCode.INTERRUPTED, out
    lines = [json.loads(line) for line in store.read_text().splitlines()]
    assert lines[-1]["type"] == "summary"  # the run closed its store on the way out
    assert lines[-1]["dataset_size"] == 2000
    listed = subprocess.run(
        [sys.executable, "-m", "dotevals.cli", "list"], cwd=pytester.path, capture_output=True
    )
    assert b"incomplete" in listed.stdout, listed.stdout  # fewer rows stored than the dataset
    stored = _final_records(store)
    assert 20 <= len(stored) < 2000
    assert all(r["error"] is None for r in stored.values())
