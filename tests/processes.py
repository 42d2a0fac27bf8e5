"""Process families for the supervisor's tests: a script snippet that spawns one, and waiting."""

from __future__ import annotations

import time
from collections.abc import Callable

#: Script lines that start a child, which starts a grandchild; both sleep until killed.
SPAWN_CHILD_AND_GRANDCHILD = r"""
grandchild = "import time; time.sleep(600)"
child = (
    "import subprocess, sys, time; "
    f"subprocess.Popen([sys.executable, '-c', {grandchild!r}]); time.sleep(600)"
)
subprocess.Popen([sys.executable, "-c", child])
"""


def wait_for(condition: Callable[[], object], timeout: float) -> bool:
    """Check ``condition`` every 50 ms for up to ``timeout`` seconds; whether it came true."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True
