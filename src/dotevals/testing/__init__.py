"""A real, fast, OpenAI-compatible test server with a deterministic model.

Run it with ``python -m dotevals.testing --port 8000``, or from tests and benchmarks as a
real subprocess::

    with ServerProcess(latency=0.05) as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="unused")
        ...
        assert server.stats()["requests"] == 1
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from dotevals.errors import ServerStartError
from dotevals.providers import _supervisor
from dotevals.testing._kit import ProviderCheck, check_provider
from dotevals.testing._model import answer
from dotevals.testing._server import DEFAULT_MODEL, ServerSettings, run_server, serve

__all__ = [
    "DEFAULT_MODEL",
    "ProviderCheck",
    "ServerProcess",
    "ServerSettings",
    "answer",
    "check_provider",
    "run_server",
    "serve",
]

_LISTENING = re.compile(r"dotevals-testing listening on http://(\S+):(\d+)")
_STOP_GRACE = 5.0


def _records_dir() -> Path:
    """Where records of running test servers are kept: one directory per user."""
    user = getattr(os, "getuid", lambda: "user")()
    return Path(tempfile.gettempdir()) / f"dotevals-testing-{user}" / "servers"


class ServerProcess:
    """The test server running as a subprocess (``python -m dotevals.testing --port 0``).

    It runs under the same supervisor as the local model servers: its own process group, a
    parent-death signal and a watchdog, so that it never outlives the process that started it,
    and its output goes to a log file. Usable as a sync or async context manager, which starts
    and stops it. Start it from a thread that lives as long as it should (Linux's parent-death
    signal follows the thread that started it).

    Example::

        with ServerProcess(latency=0.05) as server:
            client = openai.OpenAI(base_url=server.base_url, api_key="unused")

    Attributes:
        host: The address the server binds.
        settings: The server's knobs (:class:`ServerSettings`).
    """

    def __init__(
        self,
        settings: ServerSettings | None = None,
        *,
        extra_args: Sequence[str] = (),
        host: str = "127.0.0.1",
        startup_timeout: float = 15.0,
        log_dir: str | os.PathLike[str] | None = None,
        **knobs: Any,
    ) -> None:
        """Configures the server; nothing runs before :meth:`start`.

        Args:
            settings: The server's knobs; or give them as keywords (``latency=0.05``,
                ``error_rate``, ``error_status``, ``retry_after``, ``api_key``,
                ``model_names``: see :class:`ServerSettings`).
            extra_args: More command-line arguments (e.g. ``["--model", "m"]``).
            host: The address to bind.
            startup_timeout: Seconds to wait for the server to listen.
            log_dir: Where the server's log goes (default: a temporary directory removed at
                :meth:`stop`; :attr:`output` keeps what it held).
        """
        if settings is not None and knobs:
            raise TypeError("ServerProcess: give settings or keyword knobs, not both")
        self.settings = settings if settings is not None else ServerSettings(**knobs)
        self.host = host
        self._startup_timeout = startup_timeout
        self._command = [sys.executable, "-m", "dotevals.testing", "--host", host, "--port", "0"]
        self._command += [*self.settings.argv(), *extra_args]
        self._log_dir = Path(log_dir) if log_dir is not None else None
        self._temp_dir: Path | None = None
        self._supervised: _supervisor.Supervised | None = None
        self._port: int | None = None
        self._output: str | None = None

    @property
    def process(self) -> subprocess.Popen[bytes] | None:
        """The server's process, once started."""
        return None if self._supervised is None else self._supervised.process

    @property
    def port(self) -> int:
        """The port the server listens on (after :meth:`start`)."""
        if self._port is None:
            raise RuntimeError("the test server is not started")
        return self._port

    @property
    def url(self) -> str:
        """The server's root URL, e.g. ``http://127.0.0.1:PORT``."""
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """The OpenAI base URL, e.g. ``http://127.0.0.1:PORT/v1``."""
        return f"{self.url}/v1"

    @property
    def returncode(self) -> int | None:
        """The exit status once the process ended, else None."""
        return None if self._supervised is None else self._supervised.returncode

    @property
    def output(self) -> str:
        """Everything the process wrote to stdout and stderr so far."""
        if self._output is not None:
            return self._output
        if self._supervised is None:
            return ""
        try:
            return self._supervised.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def start(self) -> None:
        """Spawns the server and waits until it listens.

        Raises:
            ServerStartError: The process exited or did not listen within the timeout.
            RuntimeError: The server was already started.
        """
        self._spawn()
        _supervisor.run_sync(self._wait_listening())

    def _spawn(self) -> None:
        if self._supervised is not None:
            raise RuntimeError("the test server was already started")
        log_dir = self._log_dir
        if log_dir is None:
            log_dir = self._temp_dir = Path(tempfile.mkdtemp(prefix="dotevals-testing-"))
        records = _records_dir()
        _supervisor.reap(records, 1.0)
        self._supervised = _supervisor.start(
            self._command,
            log_path=log_dir / "dotevals-testing.log",
            records=records,
            grace=_STOP_GRACE,
            env=_supervisor.python_env(),
            label="dotevals-testing",
        )

    async def _listening(self) -> bool:
        match = _LISTENING.search(self.output)
        if match is not None:
            self._port = int(match.group(2))
        return match is not None

    async def _wait_listening(self) -> None:
        assert self._supervised is not None
        try:
            await self._supervised.wait_ready(self._listening, self._startup_timeout, interval=0.02)
        except _supervisor.SupervisorError as exc:
            await self._stop()
            message = f"the dotevals test server {exc}; its output:\n{self.output}"
            spec = subprocess.list2cmdline(self._command)
            raise ServerStartError(message, provider="dotevals-testing", spec=spec) from None

    def stop(self) -> None:
        """Stops the server: SIGTERM to its group, then SIGKILL after 5 s. Safe to call twice."""
        _supervisor.run_sync(self._stop())

    async def _stop(self) -> None:
        supervised = self._supervised
        if supervised is None or self._output is not None:
            return
        await supervised.stop()
        self._output = self.output
        if self._temp_dir is not None:
            shutil.rmtree(self._temp_dir, ignore_errors=True)

    def stats(self) -> dict[str, Any]:
        """Returns the server's counters (``GET /stats``)."""
        return self._call("GET", "/stats")

    def reset_stats(self) -> None:
        """Resets the server's counters (``POST /stats/reset``)."""
        self._call("POST", "/stats/reset")

    def _call(self, method: str, path: str) -> dict[str, Any]:
        data = b"" if method == "POST" else None
        request = urllib.request.Request(self.url + path, data=data, method=method)
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(request, timeout=10) as response:
            result: dict[str, Any] = json.loads(response.read())
        return result

    def __enter__(self) -> ServerProcess:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    async def __aenter__(self) -> ServerProcess:
        self._spawn()
        await self._wait_listening()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self._stop()
