"""One process supervisor: every server dotevals starts runs, is watched and stops through it.

:func:`start` runs a command so that it never outlives its runner, even one killed with SIGKILL:

* the command runs in its own session and process group, its output in a log file; Linux sends
  it SIGTERM when the runner's thread that started it dies (``PR_SET_PDEATHSIG``, set by a tiny
  launcher, :mod:`dotevals.providers._launch`, that then ``exec``\\ s the command);
* a watchdog process outside that group (:mod:`dotevals.providers._watchdog`) holds the read
  end of a pipe whose write end only the runner holds: when the runner dies the pipe ends, and
  the watchdog SIGTERMs then SIGKILLs the whole group, grandchildren included;
* a record of the process is kept in a directory (:mod:`dotevals.providers._records`) until it
  stops; :func:`reap` stops what is left of processes whose runner is dead.

:meth:`Supervised.wait_ready` polls a readiness check while watching for an early exit;
:meth:`Supervised.stop` sends SIGTERM to the group, then SIGKILL after a grace period. The
local server providers and :class:`dotevals.testing.ServerProcess` add only their policy: the
command, the readiness check and their messages.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import dotevals
from dotevals.providers import _launch, _watchdog
from dotevals.providers._records import (
    SERVER_ID_ENV,
    ServerRecord,
    reap_orphans,
    remove_record,
    write_record,
)
from dotevals.providers._watchdog import STOP, group_members, process_start, signal_group

__all__ = [
    "MASK",
    "NotReady",
    "ProcessExited",
    "Supervised",
    "SupervisorError",
    "poll_until",
    "python_env",
    "reap",
    "run_sync",
    "start",
]

#: What stands in for a secret in logs, messages and records.
MASK = "***"
_TAIL_BYTES = 256 * 1024
_KILL_WAIT = 5.0
_WATCHDOG_WAIT = 2.0

T = TypeVar("T")


class SupervisorError(Exception):
    """A supervised process did not become ready."""


class ProcessExited(SupervisorError):
    """The process exited before it was ready; ``returncode`` is its exit status."""

    def __init__(self, returncode: int) -> None:
        super().__init__(f"exited with code {returncode}")
        self.returncode = returncode


class NotReady(SupervisorError):
    """The readiness check did not pass within ``timeout`` seconds."""

    def __init__(self, timeout: float) -> None:
        super().__init__(f"not ready within {timeout:g} s")
        self.timeout = timeout


async def poll_until(done: Callable[[], bool], timeout: float, interval: float) -> bool:
    """Check ``done`` every ``interval`` seconds for up to ``timeout``; whether it came true.

    Process exits have no asyncio event to await without a child watcher, hence the polling.
    """
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(interval)
    return True


def run_sync(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run ``coroutine`` to completion from sync code, even where an event loop is running.

    It runs in a short-lived thread with a loop of its own; start processes in the calling
    thread (the parent-death signal follows the thread that started a process), then wait
    here.
    """
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="dotevals-wait") as pool:
        return pool.submit(asyncio.run, coroutine).result()


def python_env(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """``env`` (default: this process's) made to run ``python -m dotevals...`` children.

    The directory this dotevals is imported from goes first on ``PYTHONPATH`` (a source tree
    on ``sys.path`` only is seen by the child too) and output is unbuffered, so that logs show
    lines as they are written.
    """
    result = dict(os.environ if env is None else env)
    root = str(Path(dotevals.__file__).resolve().parent.parent)
    paths = [root, *(p for p in result.get("PYTHONPATH", "").split(os.pathsep) if p != root)]
    result["PYTHONPATH"] = os.pathsep.join(filter(None, paths))
    result["PYTHONUNBUFFERED"] = "1"
    return result


def read_tail(path: Path, lines: int, secret: str = "") -> str:
    """The last ``lines`` lines of the file at ``path``, with ``secret`` masked."""
    try:
        with path.open("rb") as log:
            log.seek(0, os.SEEK_END)
            log.seek(max(0, log.tell() - _TAIL_BYTES))
            text = log.read().decode("utf-8", errors="replace")
    except OSError as exc:
        return f"(log unreadable: {exc})"
    tail = "\n".join(text.splitlines()[-lines:])
    return tail.replace(secret, MASK) if secret else tail


@dataclass
class Supervised:
    """A command started by :func:`start`: its process, log, watchdog and record.

    Attributes:
        process: The process (the launcher, which became the command: same pid).
        log_path: The file the command's stdout and stderr go to.
        command: The command line as shown to people (secrets masked).
        grace: Seconds between SIGTERM and SIGKILL when stopping.
    """

    process: subprocess.Popen[bytes]
    log_path: Path
    command: str
    grace: float
    secret: str = field(default="", repr=False)
    server_id: str = field(default="", repr=False)
    watchdog: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    watchdog_fd: int | None = field(default=None, repr=False)
    record_path: Path | None = None

    @property
    def pid(self) -> int:
        """The command's process id."""
        return self.process.pid

    @property
    def pgid(self) -> int:
        """The process group the command leads (its pid: it runs in a session of its own)."""
        return self.process.pid

    @property
    def returncode(self) -> int | None:
        """The exit status once the command has exited (negative: killed by that signal)."""
        return self.process.poll()

    def log_tail(self, lines: int = 50) -> str:
        """The last ``lines`` lines of the log, the secret masked."""
        return read_tail(self.log_path, lines, self.secret)

    async def wait_exit(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for the command to exit; whether it did."""
        return await poll_until(lambda: self.returncode is not None, timeout, 0.02)

    async def wait_ready(
        self,
        check: Callable[[], Awaitable[bool]],
        timeout: float,
        *,
        interval: float = 0.1,
        on_wait: Callable[[float], None] | None = None,
        every: float = 10.0,
    ) -> None:
        """Await ``check`` every ``interval`` seconds until it returns True.

        Args:
            check: The readiness check (an HTTP health request, a line in the log, ...).
            timeout: Seconds before giving up.
            interval: Seconds between checks; an exit is seen within one interval.
            on_wait: Called with the seconds waited so far every ``every`` seconds.
            every: Seconds between ``on_wait`` calls.

        Raises:
            ProcessExited: The command exited first.
            NotReady: ``timeout`` passed first (the command still runs: stop it).
        """
        started = time.monotonic()
        next_note = started + every
        while True:
            code = self.returncode
            if code is not None:
                raise ProcessExited(code)
            if await check():
                return
            now = time.monotonic()
            if now - started >= timeout:
                raise NotReady(timeout)
            if on_wait is not None and now >= next_note:
                next_note += every
                on_wait(now - started)
            await asyncio.sleep(interval)

    async def stop(self) -> None:
        """SIGTERM the group, SIGKILL it after ``grace``, release the watchdog and record.

        Safe to call again: a group already gone is left alone.
        """
        try:
            await self._terminate()
        finally:
            await self._release_watchdog()
            remove_record(self.record_path)
            self.record_path = None

    def _gone(self) -> bool:
        return self.returncode is not None and not group_members(self.pgid)

    async def _terminate(self) -> None:
        if self._gone():
            return
        signal_group(self.pgid, signal.SIGTERM)
        if not await poll_until(self._gone, self.grace, 0.05):
            signal_group(self.pgid, signal.SIGKILL)
            await poll_until(self._gone, _KILL_WAIT, 0.05)

    async def _release_watchdog(self) -> None:
        """Tell the watchdog the command was stopped on purpose, then reap it."""
        fd, self.watchdog_fd = self.watchdog_fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.write(fd, STOP)
            os.close(fd)
        watchdog, self.watchdog = self.watchdog, None
        if watchdog is None:
            return
        if not await poll_until(lambda: watchdog.poll() is not None, _WATCHDOG_WAIT, 0.02):
            watchdog.kill()
            watchdog.wait()


def start(
    argv: Sequence[str],
    *,
    log_path: Path,
    records: Path,
    grace: float,
    env: Mapping[str, str] | None = None,
    shown: str | None = None,
    secret: str = "",
    port: int = 0,
    label: str = "",
) -> Supervised:
    """Start ``argv`` supervised: own process group, death signal, watchdog, record, log.

    Args:
        argv: The command line.
        log_path: Where its output goes (created, parent directories too).
        records: The directory of on-disk records (see :func:`reap`).
        grace: Seconds between SIGTERM and SIGKILL when it is stopped or orphaned.
        env: Its environment (default: this process's).
        shown: The command line as shown in messages and records (default: ``argv``).
        secret: A string masked in log tails.
        port, label: What the record says the process serves.

    Raises:
        FileNotFoundError: ``argv[0]`` is not an executable on ``PATH``.
    """
    if not argv or shutil.which(argv[0]) is None:
        raise FileNotFoundError(f"command not found: {argv[0] if argv else '(empty)'}")
    server_id = secrets.token_hex(8)
    process = _popen(argv, log_path, {**(env or os.environ), SERVER_ID_ENV: server_id})
    command = shown if shown is not None else subprocess.list2cmdline(argv)
    supervised = Supervised(process, log_path, command, grace, secret, server_id)
    try:
        _guard(supervised)
        supervised.record_path = write_record(records, _record(supervised, port, label))
    except BaseException:
        run_sync(supervised.stop())
        raise
    return supervised


def reap(records: Path, grace: float) -> list[ServerRecord]:
    """Stop what is left of recorded processes whose runner is dead; return their records."""
    return reap_orphans(records, grace)


def _popen(argv: Sequence[str], log_path: Path, env: Mapping[str, str]) -> subprocess.Popen[bytes]:
    """Start ``argv`` through the launcher, in its own session, output to ``log_path``."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    launcher = [sys.executable, "-I", "-S", _launch.__file__, str(os.getpid()), "--"]
    with log_path.open("wb") as log:
        return subprocess.Popen(
            [*launcher, *argv],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=dict(env),
            start_new_session=True,
        )


def _guard(supervised: Supervised) -> None:
    """Start the watchdog of the process group, holding the write end of its pipe."""
    runner_start = process_start(os.getpid())
    argv = [
        *(sys.executable, "-I", "-S", _watchdog.__file__),
        *(str(os.getpid()), str(supervised.pgid), str(supervised.grace)),
        "-" if runner_start is None else str(runner_start),
    ]
    read_fd, write_fd = os.pipe()
    try:
        supervised.watchdog = subprocess.Popen(
            argv,
            stdin=read_fd,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
    except BaseException:
        os.close(write_fd)
        raise
    finally:
        os.close(read_fd)
    supervised.watchdog_fd = write_fd


def _record(supervised: Supervised, port: int, label: str) -> ServerRecord:
    return ServerRecord(
        pid=supervised.pid,
        pgid=supervised.pgid,
        runner_pid=os.getpid(),
        runner_start=process_start(os.getpid()),
        server_id=supervised.server_id,
        command=supervised.command,
        port=port,
        model=label,
        log=str(supervised.log_path),
        watchdog_pid=supervised.watchdog.pid if supervised.watchdog else None,
    )
