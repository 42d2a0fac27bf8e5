"""A real, fast, OpenAI-compatible test server with a deterministic model.

Run it with ``python -m dotevals.testing --port 8000``, or from tests and benchmarks as a
real subprocess::

    with ServerProcess(latency=0.05) as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="unused")
        ...
        assert server.stats()["requests"] == 1
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from dotevals.errors import ServerStartError
from dotevals.testing._model import answer
from dotevals.testing._server import DEFAULT_MODEL, run_server, serve

__all__ = ["DEFAULT_MODEL", "ServerProcess", "answer", "run_server", "serve"]

_LISTENING = re.compile(r"dotevals-testing listening on http://(\S+):(\d+)")
_STOP_TIMEOUT = 5.0


class ServerProcess:
    """The test server running as a subprocess (``python -m dotevals.testing --port 0``).

    Usable as a sync or async context manager, which starts and stops it.

    Attributes:
        host: The address the server binds.
        process: The subprocess, once started.
    """

    def __init__(
        self,
        *,
        latency: float = 0.0,
        error_rate: float = 0.0,
        error_status: int = 429,
        retry_after: float | None = None,
        api_key: str | None = None,
        extra_args: Sequence[str] = (),
        host: str = "127.0.0.1",
        startup_timeout: float = 15.0,
    ) -> None:
        """Configures the server; nothing runs before :meth:`start`.

        Args:
            latency: Seconds each completion request waits.
            error_rate: Fraction of completion requests answered with ``error_status``.
            error_status: Status of injected errors (429, 500 or 503).
            retry_after: ``Retry-After`` seconds sent with injected errors; None omits it.
            api_key: Required bearer token on ``/v1/*``; None disables auth.
            extra_args: More command-line arguments (e.g. ``["--model", "m"]``).
            host: The address to bind.
            startup_timeout: Seconds to wait for the server to listen.
        """
        self.host = host
        self.process: subprocess.Popen[str] | None = None
        self._startup_timeout = startup_timeout
        self._command = [sys.executable, "-m", "dotevals.testing", "--host", host, "--port", "0"]
        self._command += ["--latency", repr(latency), "--error-rate", repr(error_rate)]
        self._command += ["--error-status", str(error_status)]
        if retry_after is not None:
            self._command += ["--retry-after", repr(retry_after)]
        if api_key is not None:
            self._command += ["--api-key", api_key]
        self._command += list(extra_args)
        self._port: int | None = None
        self._output: list[str] = []
        self._ready = threading.Event()
        self._reader: threading.Thread | None = None

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
        return None if self.process is None else self.process.poll()

    @property
    def output(self) -> str:
        """Everything the process wrote to stdout and stderr so far."""
        return "".join(self._output)

    def start(self) -> None:
        """Spawns the server and waits until it listens.

        Raises:
            ServerStartError: The process exited or did not listen within the timeout.
            RuntimeError: The server was already started.
        """
        if self.process is not None:
            raise RuntimeError("the test server was already started")
        self.process = subprocess.Popen(
            self._command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=_child_environment(),
        )
        self._reader = threading.Thread(
            target=self._drain, args=(self.process.stdout,), name="dotevals-testing", daemon=True
        )
        self._reader.start()
        ready = self._ready.wait(self._startup_timeout)
        if self._port is None:
            self.stop()
            reason = "exited" if ready else f"did not listen within {self._startup_timeout:g} s"
            message = f"the dotevals test server {reason}; its output:\n{self.output}"
            raise ServerStartError(
                message, provider="dotevals-testing", spec=" ".join(self._command)
            )

    def _drain(self, stream: IO[str]) -> None:
        for line in stream:
            self._output.append(line)
            match = _LISTENING.search(line)
            if match is not None and self._port is None:
                self._port = int(match.group(2))
                self._ready.set()
        self._ready.set()

    def stop(self) -> None:
        """Stops the server: SIGTERM, then SIGKILL after 5 s. Safe to call twice."""
        process = self.process
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(_STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._reader is not None:
            self._reader.join(_STOP_TIMEOUT)
        if process.stdout is not None:
            process.stdout.close()

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
        await asyncio.to_thread(self.start)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await asyncio.to_thread(self.stop)


def _child_environment() -> dict[str, str]:
    """The environment of the server: this process's, able to import this dotevals."""
    env = dict(os.environ)
    source_root = str(Path(__file__).resolve().parents[2])
    paths = [source_root, *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))]
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env["PYTHONUNBUFFERED"] = "1"
    return env
