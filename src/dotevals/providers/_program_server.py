"""Servers whose program a subclass names (vLLM, SGLang, Ollama, llama.cpp): one constructor."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from dotevals.providers.server import LocalServerProvider, SessionDefaults, next_free_port

__all__ = ["ProgramServerProvider"]


class ProgramServerProvider(LocalServerProvider):
    """A local server named by class attributes, its command built per model, port from a base up.

    Subclasses set ``server_name`` (log files, errors), ``default_port`` (the first port tried),
    ``default_health_path`` and ``default_startup_timeout``, and build the command in
    :meth:`~dotevals.providers.server.LocalServerProvider.build_command`.

    Args:
        startup_timeout: Seconds to wait for the server to become healthy (default:
            ``default_startup_timeout``).
        stop_grace: Seconds between SIGTERM and SIGKILL when stopping.
        env: Variables added to the server's environment (e.g. ``CUDA_VISIBLE_DEVICES``).
        host: Address the server binds and the client connects to.
        log_dir: Directory of server logs (default ``$DOTEVALS_LOG_DIR`` or ``.dotevals/logs``).
        session_defaults: Where logs go and how start-up progress shows when ``log_dir`` does
            not say (default: those of the session it runs in).
        **defaults: Server options applied to every model, as keyword arguments.
    """

    #: The provider's name, its usual port, the path polled for health and the start-up wait.
    server_name = "server"
    default_port = 8000
    default_health_path = "/v1/models"
    default_startup_timeout = 600.0

    def __init__(
        self,
        *,
        startup_timeout: float | None = None,
        stop_grace: float = 10.0,
        env: Mapping[str, str] | None = None,
        host: str = "127.0.0.1",
        log_dir: str | os.PathLike[str] | None = None,
        session_defaults: SessionDefaults | None = None,
        **defaults: Any,
    ) -> None:
        if startup_timeout is None:
            startup_timeout = self.default_startup_timeout
        super().__init__(
            [],
            health_path=self.default_health_path,
            startup_timeout=startup_timeout,
            env=env,
            host=host,
            log_dir=log_dir,
            stop_grace=stop_grace,
            name=self.server_name,
            session_defaults=session_defaults,
        )
        self.base_port = self.default_port
        self.defaults = defaults

    def choose_port(self) -> int:
        """The first free port from ``base_port`` up, never one handed out before."""
        return next_free_port(self.base_port, self.host)
