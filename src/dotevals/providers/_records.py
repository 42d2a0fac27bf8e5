"""On-disk records of running local model servers, and the reaper of orphaned ones.

Each server started by a :class:`~dotevals.providers.server.LocalServerProvider` has a record
``<log_dir>/servers/<pid>.json`` (process group, runner pid, masked command; never the API key)
that is removed when the server stops. A record whose runner is dead belongs to a run that was
killed before its teardown and whose watchdog failed too: :func:`reap_orphans` stops what is
left of such a server's group. Every server process carries ``DOTEVALS_SERVER_ID`` in its
environment, so that a process group id reused by an unrelated program is never killed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dotevals.providers._watchdog import group_members, is_alive, terminate_group

__all__ = ["SERVER_ID_ENV", "ServerRecord", "reap_orphans", "remove_record", "write_record"]

#: The environment variable naming the server a process belongs to.
SERVER_ID_ENV = "DOTEVALS_SERVER_ID"

_PROC = Path("/proc")


@dataclass(frozen=True)
class ServerRecord:
    """What is known on disk about one running server."""

    pid: int
    pgid: int
    runner_pid: int
    runner_start: int | None
    server_id: str
    command: str
    port: int
    model: str
    log: str
    watchdog_pid: int | None = None


def write_record(directory: Path, record: ServerRecord) -> Path:
    """Write ``record`` atomically as ``directory/<pid>.json`` and return its path."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{record.pid}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(dataclasses.asdict(record), indent=2))
    os.replace(tmp, path)
    return path


def remove_record(path: Path | None) -> None:
    """Remove a record; one already gone is fine."""
    if path is not None:
        with contextlib.suppress(OSError):
            path.unlink()


def read_record(path: Path) -> ServerRecord | None:
    """The record stored at ``path``, or None when it is unreadable or malformed."""
    try:
        data: Any = json.loads(path.read_text())
        return ServerRecord(**data)
    except (OSError, ValueError, TypeError):
        return None


def _carries_id(pid: int, marker: bytes) -> bool:
    try:
        environ = (_PROC / str(pid) / "environ").read_bytes()
    except OSError:
        return False
    return marker in environ.split(b"\0")


def owned_members(record: ServerRecord) -> list[int]:
    """The live processes of the record's group that belong to its server."""
    members = group_members(record.pgid)
    if not _PROC.is_dir():
        return members
    marker = f"{SERVER_ID_ENV}={record.server_id}".encode()
    return [pid for pid in members if _carries_id(pid, marker)]


def reap_orphans(directory: Path, grace: float) -> list[ServerRecord]:
    """Stop the servers recorded in ``directory`` whose runner is dead; return their records.

    Records of servers whose runner still runs (another pytest worker, another session) are
    left alone. Records whose server is already gone are removed.
    """
    reaped = []
    for path in sorted(directory.glob("*.json")) if directory.is_dir() else []:
        record = read_record(path)
        if record is not None and is_alive(record.runner_pid, record.runner_start):
            continue
        if record is not None and owned_members(record):
            terminate_group(record.pgid, grace)
            reaped.append(record)
        remove_record(path)
    return reaped
