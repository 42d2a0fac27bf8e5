"""Start a server command that Linux kills when the runner that started it dies.

Run as ``python _launch.py RUNNER_PID -- COMMAND...`` (by file path: this module imports
nothing but the standard library). It sets ``PR_SET_PDEATHSIG`` to SIGTERM through ``prctl``,
checks that its parent is still ``RUNNER_PID`` (the runner may have died before the call), then
replaces itself with ``COMMAND`` (the setting survives ``exec``). This is done here rather than
in a ``preexec_fn``, which is unsafe in a process with threads. The death signal covers the
server process itself; the watchdog covers the rest of its process group.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

__all__ = ["main", "set_parent_death_signal"]

_PR_SET_PDEATHSIG = 1
_EXIT_CANNOT_RUN = 127


def set_parent_death_signal(sig: int) -> bool:
    """Ask Linux to send ``sig`` to this process when its parent dies; False elsewhere."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
    except OSError:
        return False
    return bool(libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0) == 0)


def main(argv: list[str]) -> int:
    """Entry point: ``RUNNER_PID -- COMMAND...``; returns only when the command cannot run."""
    if len(argv) < 3 or argv[1] != "--":
        print("usage: _launch RUNNER_PID -- COMMAND...", file=sys.stderr)  # noqa: T201
        return 2
    set_parent_death_signal(signal.SIGTERM)
    if os.getppid() != int(argv[0]):
        print("dotevals: the runner exited before the server started", file=sys.stderr)  # noqa: T201
        return 1
    command = argv[2:]
    try:
        os.execvp(command[0], command)
    except OSError as exc:
        print(f"dotevals: cannot run {command[0]!r}: {exc}", file=sys.stderr)  # noqa: T201
    return _EXIT_CANNOT_RUN


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
