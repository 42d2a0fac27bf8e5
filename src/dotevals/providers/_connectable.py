"""Servers a user may already run (Ollama, llama.cpp): connect to one, or start one."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dotevals.errors import ProviderError
from dotevals.providers._client import make_client
from dotevals.providers._program_server import ProgramServerProvider
from dotevals.providers.server import DUMMY_API_KEY

__all__ = ["ConnectableServerProvider"]


class ConnectableServerProvider(ProgramServerProvider):
    """An OpenAI-compatible server: connect to a running one, or start one per model.

    By default ``setup(spec, **config)`` connects to the server at ``base_url`` and returns a
    handle whose ``model`` is an ``openai.AsyncOpenAI`` client bound to ``spec`` (``config``
    holds client options then). With ``start=True`` it starts the server itself through the
    process supervisor, exactly as the vLLM provider does (a free port from the server's
    usual one up, log file, health check, no process left behind), and ``config`` holds
    server options.

    Args:
        base_url: The running server's OpenAI API root (connect mode).
        start: Start a server per model instead of connecting.
        executable: The server program (a path, or a command line as a list).
        api_key: The key sent to a running server (default: none needed).
        timeout: Seconds per request of the client (connect mode).
        **options: The arguments of
            :class:`~dotevals.providers._program_server.ProgramServerProvider` for a started
            server (``startup_timeout``, ``env``, ``log_dir``, ...) and server options applied
            to every model it serves.
    """

    #: The provider's name, its program, its usual port and the path polled for health.
    server_name = "server"
    default_executable = ""
    default_port = 8080
    default_health_path = "/v1/models"
    default_startup_timeout = 300.0

    def __init__(
        self,
        base_url: str | None = None,
        *,
        start: bool = False,
        executable: str | Sequence[str] | None = None,
        api_key: str | None = None,
        timeout: float | None = None,
        **options: Any,
    ) -> None:
        super().__init__(**options)
        program = executable or self.default_executable
        self.executable = [program] if isinstance(program, str) else list(program)
        self.start = start
        self.base_url = base_url or self.default_base_url()
        self.api_key = api_key
        self.timeout = timeout

    def default_base_url(self) -> str:
        """Where the server runs when ``base_url`` is not given."""
        return f"http://127.0.0.1:{self.default_port}/v1"

    async def create(self, resource_id: str, spec: str, config: dict[str, Any]) -> Any:
        """Start a server (``start=True``) or connect to the running one."""
        if self.start:
            return await super().create(resource_id, spec, {**self.defaults, **config})
        try:
            options = {"timeout": self.timeout, **config}
            return make_client(
                spec, base_url=self.base_url, api_key=self.api_key or DUMMY_API_KEY, **options
            )
        except Exception as exc:
            message = (
                f"could not make a client for the {self.name} server at {self.base_url}: "
                f"{type(exc).__name__}: {exc} (setup options are client options here; server "
                f"options need {type(self).__name__}(start=True))"
            )
            raise ProviderError(message, provider=self.name, spec=spec) from exc
