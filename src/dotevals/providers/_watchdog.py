"""Kill a local model server's process group when the runner that started it dies.

Run as ``python -m dotevals.providers._watchdog RUNNER_PID PGID GRACE [RUNNER_START]`` (or by
file path: this module imports nothing but the standard library). Its stdin is the read end of
a pipe whose write end only the runner holds. The runner writes ``stop`` before it stops the
server itself; an end of file without ``stop`` means the runner died, and the watchdog sends
SIGTERM to the server's whole process group, waits ``GRACE`` seconds, then sends SIGKILL. It
also checks every second that the runner is alive (in case the write end leaked into a forked
child) and exits on its own once the server's group is empty.

The process helpers below read ``/proc`` where there is one; zombies count as dead.
"""

from __future__ import annotations

import os
import select
import signal
import sys
import time
from pathlib import Path

__all__ = [
    "STOP",
    "group_members",
    "is_alive",
    "main",
    "process_ids",
    "process_start",
    "process_tree",
    "signal_group",
    "terminate_group",
]

#: What the runner writes to the pipe to say "I stop the server myself: exit quietly".
STOP = b"stop"

_PROC = Path("/proc")
_DEAD_STATES = ("Z", "X", "x")
_CHECK_EVERY = 1.0


def _stat_fields(pid: int) -> list[str] | None:
    """The fields of ``/proc/PID/stat`` after the command name (state first), or None."""
    try:
        raw = (_PROC / str(pid) / "stat").read_text()
    except (OSError, ValueError):
        return None
    return raw.rpartition(")")[2].split()


def process_start(pid: int) -> int | None:
    """The start time of ``pid`` in clock ticks since boot, or None where unknown."""
    fields = _stat_fields(pid)
    return int(fields[19]) if fields is not None and len(fields) > 19 else None


def _signal_zero(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def is_alive(pid: int, start: int | None = None) -> bool:
    """Whether ``pid`` runs (not a zombie) and, when ``start`` is given, started then."""
    if not _PROC.is_dir():
        return _signal_zero(pid)
    fields = _stat_fields(pid)
    if fields is None or fields[0] in _DEAD_STATES:
        return False
    return start is None or process_start(pid) in (None, start)


def _proc_pids() -> list[int]:
    try:
        return [int(entry.name) for entry in _PROC.iterdir() if entry.name.isdigit()]
    except OSError:
        return []


def process_ids(pid: int) -> tuple[int, int, int] | None:
    """``(parent pid, process group, session)`` of a live ``pid``, or None."""
    fields = _stat_fields(pid)
    if fields is None or len(fields) < 4 or fields[0] in _DEAD_STATES:
        return None
    return int(fields[1]), int(fields[2]), int(fields[3])


def process_tree() -> dict[int, tuple[int, int, int]]:
    """Every live process: pid -> ``(parent pid, process group, session)`` (empty off Linux)."""
    table = {}
    for pid in _proc_pids():
        ids = process_ids(pid)
        if ids is not None:
            table[pid] = ids
    return table


def group_members(pgid: int) -> list[int]:
    """The live (non-zombie) processes of process group ``pgid``."""
    if not _PROC.is_dir():
        try:
            os.killpg(pgid, 0)
        except (ProcessLookupError, PermissionError):
            return []
        return [pgid]
    members = []
    for pid in _proc_pids():
        fields = _stat_fields(pid)
        if fields is not None and fields[0] not in _DEAD_STATES and int(fields[2]) == pgid:
            members.append(pid)
    return members


def signal_group(pgid: int, sig: int) -> None:
    """Send ``sig`` to process group ``pgid``; a group already gone is fine."""
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def terminate_group(pgid: int, grace: float, *, poll: float = 0.05) -> None:
    """SIGTERM the group, wait up to ``grace`` seconds for it to empty, then SIGKILL it."""
    signal_group(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while group_members(pgid) and time.monotonic() < deadline:
        time.sleep(poll)
    if group_members(pgid):
        signal_group(pgid, signal.SIGKILL)


def _runner_told_stop(fd: int) -> bool | None:
    """True on ``stop``, False on end of file (runner died), None on anything else."""
    try:
        data = os.read(fd, 64)
    except OSError:
        return False
    if not data:
        return False
    return True if STOP in data else None


def watch(runner_pid: int, pgid: int, grace: float, runner_start: int | None, fd: int = 0) -> int:
    """Guard ``pgid`` until the runner says stop, dies, or the group empties on its own."""
    while True:
        readable, _, _ = select.select([fd], [], [], _CHECK_EVERY)
        if readable:
            told = _runner_told_stop(fd)
            if told is True:
                return 0
            if told is False:
                break
        elif not group_members(pgid):
            return 0
        elif not is_alive(runner_pid, runner_start):
            break
    terminate_group(pgid, grace)
    return 0


def main(argv: list[str]) -> int:
    """Entry point: ``RUNNER_PID PGID GRACE [RUNNER_START]``."""
    if len(argv) not in (3, 4):
        print("usage: _watchdog RUNNER_PID PGID GRACE [RUNNER_START]", file=sys.stderr)  # noqa: T201
        return 2
    runner_start = int(argv[3]) if len(argv) == 4 and argv[3] != "-" else None
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    return watch(int(argv[0]), int(argv[1]), float(argv[2]), runner_start)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
