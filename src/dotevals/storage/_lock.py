"""One writer per evaluation store: an advisory file lock held for a whole run.

Two processes running the same experiment and evaluation at once (two terminals, xdist
workers, Ray drivers) would both resume from the same records and compute the same rows. The
store's :meth:`~dotevals.storage.Storage.lock_path` names a lock file; :func:`hold` takes an
OS-level lock on it (``filelock``: ``flock`` on POSIX), which the kernel releases when the
holder exits however it exits, so a killed run never leaves a stale lock. Beside the lock, a
small ``.owner`` file says who holds it (pid, host, command, since when), for the message that
the second run gets.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Final

import filelock

from dotevals.errors import EvaluationLockedError
from dotevals.storage.base import Storage

__all__ = ["hold", "holder_of"]

#: How often a run that waits for a lock tries again.
_POLL_S: Final = 0.1


def _owner_path(lock: Path) -> Path:
    return lock.with_name(lock.name + ".owner")


def _me() -> dict[str, Any]:
    return {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "command": " ".join(sys.argv)[:200],
        "since": time.time(),
    }


def holder_of(lock: Path) -> dict[str, Any] | None:
    """Who wrote the owner file beside ``lock`` last (the holder, while it is locked)."""
    try:
        data = json.loads(_owner_path(lock).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _describe(holder: dict[str, Any] | None) -> str:
    if holder is None:
        return "another process (it has not said which yet)"
    since = time.strftime("%H:%M:%S", time.localtime(float(holder.get("since", 0))))
    return (
        f"pid {holder.get('pid')} on host {holder.get('host')!r} since {since} "
        f"({holder.get('command') or 'unknown command'})"
    )


def _locked_message(lock: Path, experiment: str, evaluation: str, waited: float) -> str:
    waiting = f"after waiting {waited:g} s " if waited else ""
    return (
        f"evaluation {evaluation!r} of experiment {experiment!r} is being run by "
        f"{_describe(holder_of(lock))}; {waiting}this run stopped so that no row is computed "
        f"twice (lock file {lock}). Let that run finish and run again to resume, pass "
        "--lock-timeout SECONDS (dotevals.run(..., lock_timeout=SECONDS)) to wait for it, "
        "or use another --experiment."
    )


async def _acquire(lock: filelock.FileLock, timeout: float) -> bool:
    """Try to take ``lock`` until ``timeout`` seconds passed, without blocking the loop."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            lock.acquire(timeout=0)
        except filelock.Timeout:
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(_POLL_S)
        else:
            return True


@contextlib.asynccontextmanager
async def hold(
    storage: Storage, experiment: str, evaluation: str, timeout: float = 0.0
) -> AsyncIterator[None]:
    """Hold the lock of one evaluation's store for the body; no-op where the store has none.

    Raises:
        EvaluationLockedError: another process holds it (still, after ``timeout`` seconds);
            the message names the holder.
    """
    path = storage.lock_path(experiment, evaluation)
    if path is None:
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = filelock.FileLock(str(path))
    if not await _acquire(lock, timeout):
        message = _locked_message(path, experiment, evaluation, timeout)
        raise EvaluationLockedError(message, holder=holder_of(path))
    try:
        _owner_path(path).write_text(json.dumps(_me()), encoding="utf-8")
        yield
    finally:
        lock.release()
