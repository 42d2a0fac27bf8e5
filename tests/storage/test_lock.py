"""Two processes running one evaluation of one experiment: the second waits or stops, naming
the first; a killed holder leaves no stale lock. Real subprocesses, real stores."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from dotevals.storage import open_storage

#: argv: storage URL, lock timeout. Row 0 waits for a file ``go`` so the run holds its lock
#: for as long as the test needs; every row is logged to ``calls.txt``.
SCRIPT = """
import sys, time
from pathlib import Path
import dotevals
from dotevals import foreach

@foreach("x", range(20))
def eval_locked(x):
    with Path("calls.txt").open("a") as f:
        f.write(f"{x}\\n")
    Path("started").touch()
    while x == 0 and not Path("go").exists():
        time.sleep(0.01)
    return True

Path(f"ready-{sys.argv[3]}").touch()
results = dotevals.run(
    eval_locked, experiment="e", storage=sys.argv[1], progress=False,
    lock_timeout=float(sys.argv[2]),
)
print("stored", len(results))
"""

STORES = ["json://.dotevals", "sqlite://results.db"]


def _start(cwd: Path, url: str, timeout: float, tag: str) -> subprocess.Popen[str]:
    cmd = [sys.executable, "run_eval.py", url, str(timeout), tag]
    return subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _run(cwd: Path, url: str, tag: str) -> subprocess.CompletedProcess[str]:
    """The script run to its end, not waiting for a lock."""
    cmd = [sys.executable, "run_eval.py", url, "0", tag]
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=60)


def _wait_for(path: Path, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while not path.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, f"{path.name} never appeared"
        time.sleep(0.01)


def _calls(cwd: Path) -> Counter[int]:
    return Counter(int(x) for x in (cwd / "calls.txt").read_text().split())


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "run_eval.py").write_text(SCRIPT)
    return tmp_path


@pytest.mark.parametrize("url", STORES)
def test_second_run_stops_naming_the_holder_and_a_waiting_one_resumes(
    workdir: Path, url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = _start(workdir, url, 0, "first")
    _wait_for(workdir / "started", first)

    second = _run(workdir, url, "second")
    assert second.returncode != 0
    assert "EvaluationLockedError" in second.stderr
    assert f"pid {first.pid} on host {socket.gethostname()!r}" in second.stderr
    assert "--lock-timeout" in second.stderr

    waiting = _start(workdir, url, 60, "waiting")
    _wait_for(workdir / "ready-waiting", waiting)  # it asks for the lock while `first` holds it
    (workdir / "go").touch()
    assert first.wait(timeout=60) == 0, first.communicate()
    out, err = waiting.communicate(timeout=60)
    assert waiting.returncode == 0, err
    assert "stored 20" in out
    assert _calls(workdir) == Counter(range(20)), "a row ran twice or not at all"
    monkeypatch.chdir(workdir)
    assert sorted(open_storage(url).load("e", "eval_locked").records) == list(range(20))


def test_a_killed_holder_leaves_no_stale_lock(workdir: Path) -> None:
    url = STORES[0]
    first = _start(workdir, url, 0, "first")
    _wait_for(workdir / "started", first)
    os.kill(first.pid, signal.SIGKILL)
    first.wait(timeout=60)
    (workdir / "go").touch()

    again = _run(workdir, url, "again")
    assert again.returncode == 0, again.stderr
    assert "stored 20" in again.stdout
    assert (workdir / ".dotevals" / ".locks" / "e" / "eval_locked.lock").exists()
