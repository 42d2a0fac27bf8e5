"""The one process supervisor's guarantees, for the providers' servers and the test server."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import dotevals
from dotevals.providers import _supervisor
from dotevals.providers._watchdog import process_tree
from processes import SPAWN_CHILD_AND_GRANDCHILD, wait_for

SRC = str(Path(dotevals.__file__).resolve().parent.parent)

# A process that starts a child, which starts a grandchild; all ignore SIGTERM with --stubborn.
FAMILY = (
    r"""
import signal, subprocess, sys, time
if "--stubborn" in sys.argv:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # inherited by the children
"""
    + SPAWN_CHILD_AND_GRANDCHILD
    + r"""print("family up", flush=True)
time.sleep(600)
"""
)

# A runner that starts a family (or the test server) supervised, says where, and sleeps.
RUNNER = r"""
import json, sys, time
from pathlib import Path
from dotevals.providers import _supervisor
from dotevals.testing import ServerProcess

kind, family, records = sys.argv[1:4]
if kind == "test-server":
    server = ServerProcess()
    server.start()
    pid = server.process.pid
else:
    pid = _supervisor.start(
        [sys.executable, family, "--stubborn"], log_path=Path(records) / "family.log",
        records=Path(records), grace=0.5,
    ).pid
print(json.dumps({"pgid": pid}), flush=True)
time.sleep(600)
"""


def session(sid: int) -> list[int]:
    return [pid for pid, (_ppid, _pgid, s) in process_tree().items() if s == sid]


@pytest.fixture
def family(tmp_path: Path) -> Path:
    script = tmp_path / "family.py"
    script.write_text(FAMILY)
    return script


@pytest.fixture
def runner(tmp_path: Path) -> Iterator[Path]:
    script = tmp_path / "runner.py"
    script.write_text(RUNNER)
    yield script


@pytest.mark.parametrize("kind", ["family", "test-server"])
def test_sigkill_of_the_runner_leaves_no_process(
    kind: str, runner: Path, family: Path, tmp_path: Path
) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([SRC, os.environ.get("PYTHONPATH", "")])}
    argv = [sys.executable, str(runner), kind, str(family), str(tmp_path / "records")]
    with subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, env=env) as proc:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line, f"the runner exited with {proc.wait()}"
        sid = json.loads(line)["pgid"]  # the command leads its own session and group
        size = 3 if kind == "family" else 1
        assert wait_for(lambda: len(session(sid)) >= size, 10), session(sid)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert wait_for(lambda: not session(sid), 10), session(sid)


async def test_early_exit_is_reported_with_its_code_and_log_tail(tmp_path: Path) -> None:
    script = "import sys; print('boom: bad flag', flush=True); sys.exit(3)"
    process = _supervisor.start(
        [sys.executable, "-c", script],
        log_path=tmp_path / "crash.log",
        records=tmp_path / "records",
        grace=1.0,
    )

    async def never() -> bool:
        return False

    with pytest.raises(_supervisor.ProcessExited) as caught:
        await process.wait_ready(never, timeout=60)  # the exit, not the timeout, ends the wait
    assert caught.value.returncode == 3
    assert "boom: bad flag" in process.log_tail()
    await process.stop()
    assert list((tmp_path / "records").glob("*.json")) == []


async def test_not_ready_in_time_and_stop_escalates_to_sigkill(
    tmp_path: Path, family: Path
) -> None:
    process = _supervisor.start(
        [sys.executable, str(family), "--stubborn"],
        log_path=tmp_path / "family.log",
        records=tmp_path / "records",
        grace=0.3,
    )
    assert wait_for(lambda: len(session(process.pgid)) == 3, 10)

    async def never() -> bool:
        return False

    waits: list[float] = []
    with pytest.raises(_supervisor.NotReady):
        await process.wait_ready(never, timeout=0.3, interval=0.01, on_wait=waits.append, every=0.1)
    assert waits  # "still waiting" was reported while it waited
    assert len(list((tmp_path / "records").glob("*.json"))) == 1
    await process.stop()  # SIGTERM is ignored by all three: SIGKILL ends them
    assert process.returncode == -signal.SIGKILL and not session(process.pgid)
    assert list((tmp_path / "records").glob("*.json")) == []
    await process.stop()  # twice is fine


def test_a_command_that_is_not_there_is_named(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="command not found: no-such-server"):
        _supervisor.start(
            ["no-such-server"], log_path=tmp_path / "l.log", records=tmp_path, grace=1.0
        )


async def test_run_sync_works_inside_a_running_loop() -> None:
    async def answer() -> int:
        await asyncio.sleep(0)
        return 42

    assert _supervisor.run_sync(answer()) == 42


def test_python_env_puts_this_dotevals_first() -> None:
    env = _supervisor.python_env({"PYTHONPATH": f"/elsewhere{os.pathsep}{SRC}"})
    assert env["PYTHONPATH"].split(os.pathsep) == [SRC, "/elsewhere"]
    assert env["PYTHONUNBUFFERED"] == "1"
