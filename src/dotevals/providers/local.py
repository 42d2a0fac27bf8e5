"""The dotevals test server as a local model: a real OpenAI-compatible server, no GPU needed."""

from __future__ import annotations

import os
import sys

from dotevals.providers._supervisor import python_env
from dotevals.providers.server import LocalServerProvider
from dotevals.testing import ServerSettings

__all__ = ["LocalModelProvider"]


class LocalModelProvider(LocalServerProvider):
    """Runs ``python -m dotevals.testing``, which answers arithmetic questions, per model name.

    Any model name works (e.g. ``"dotevals-test"``). The server is started, shared, health
    checked and stopped exactly like a vLLM server, which makes it the way to try dotevals and
    to test evaluations without a GPU.

    Args:
        latency: Seconds the server waits before each answer.
        error_rate: Fraction of requests the server fails on purpose.
        startup_timeout: Seconds to wait for the server to become healthy.
        stop_grace: Seconds between SIGTERM and SIGKILL when stopping.
        host: Address the server binds and the client connects to.
        log_dir: Directory of server logs (default ``$DOTEVALS_LOG_DIR`` or ``.dotevals/logs``).
    """

    def __init__(
        self,
        latency: float = 0.0,
        error_rate: float = 0.0,
        *,
        startup_timeout: float = 60.0,
        stop_grace: float = 5.0,
        host: str = "127.0.0.1",
        log_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        knobs = ServerSettings(latency=float(latency), error_rate=float(error_rate))
        command = [
            *(sys.executable, "-m", "dotevals.testing"),
            *("--port", "{port}", "--host", "{host}", "--model", "{model}"),
            *("--api-key", "{api_key}", *knobs.argv()),
        ]
        super().__init__(
            command,
            health_path="/health",
            startup_timeout=startup_timeout,
            env={"PYTHONPATH": python_env()["PYTHONPATH"]},
            host=host,
            log_dir=log_dir,
            stop_grace=stop_grace,
            name="local",
        )
        self.latency = latency
        self.error_rate = error_rate
