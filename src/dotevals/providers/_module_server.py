"""Servers run as ``python -m MODULE`` (vLLM, SGLang): flags from config, port from a base up."""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Mapping
from typing import Any

from dotevals.providers.server import LocalServerProvider, next_free_port

__all__ = ["ModuleServerProvider"]


class ModuleServerProvider(LocalServerProvider):
    """Runs ``python -m <module> <model flag> M --port P --host H`` plus flags from config.

    The flags come from the constructor's ``defaults`` and the config given to ``setup``
    (which wins): ``tensor_parallel_size=2`` gives ``--tensor-parallel-size 2``,
    ``enforce_eager=True`` gives ``--enforce-eager``. Subclasses name the server.

    Args:
        base_port: Servers listen on the first free port from here up (default: the
            server's usual port).
        module: The module run with ``python -m`` (tests use a stand-in server).
        startup_timeout: Seconds to wait for the model to load before giving up.
        stop_grace: Seconds between SIGTERM and SIGKILL when stopping.
        env: Variables added to the server's environment (e.g. ``CUDA_VISIBLE_DEVICES``).
        host: Address the server binds and the client connects to.
        log_dir: Directory of server logs (default ``$DOTEVALS_LOG_DIR`` or ``.dotevals/logs``).
        **defaults: Server options applied to every model, as keyword arguments.
    """

    #: The provider's name (entry point, log files, errors).
    server_name = "module"
    #: The module run by default, and the pip extra that installs it.
    default_module = ""
    extra = ""
    #: The server's usual port, the flag that names the model, the path polled for health.
    default_port = 8000
    model_flag = "--model"
    default_health_path = "/v1/models"

    def __init__(
        self,
        base_port: int | None = None,
        *,
        module: str | None = None,
        startup_timeout: float = 600.0,
        stop_grace: float = 10.0,
        env: Mapping[str, str] | None = None,
        host: str = "127.0.0.1",
        log_dir: str | os.PathLike[str] | None = None,
        **defaults: Any,
    ) -> None:
        super().__init__(
            [],
            health_path=self.default_health_path,
            startup_timeout=startup_timeout,
            env=env,
            host=host,
            log_dir=log_dir,
            stop_grace=stop_grace,
            name=self.server_name,
        )
        self.base_port = self.default_port if base_port is None else base_port
        self.module = module or self.default_module
        self.defaults = defaults

    def choose_port(self) -> int:
        """The first free port from ``base_port`` up, never one handed out before."""
        return next_free_port(self.base_port, self.host)

    def build_command(self, spec: str, port: int, config: Mapping[str, Any]) -> list[str]:
        """``python -m <module> <model flag> M --port P --host H`` plus the server's flags.

        Raises:
            ImportError: The server's package is not installed (and ``module`` is its).
        """
        self._require_module()
        base = [sys.executable, "-m", self.module, self.model_flag, "{model}", "--port", str(port)]
        flags = super().build_command(spec, port, {**self.defaults, **config})
        return [*base, "--host", "{host}", *self.key_flags(), *flags]

    def key_flags(self) -> list[str]:
        """Flags that give the server its API key (none when it reads ``api_key_env``)."""
        return []

    def _require_module(self) -> None:
        top = self.module.partition(".")[0]
        try:
            found = importlib.util.find_spec(top) is not None
        except (ImportError, ValueError):
            found = False
        if found:
            return
        if self.module == self.default_module:
            raise ImportError(
                f"the {self.server_name} provider needs {top} installed in the running Python: "
                f"install it with `pip install 'dotevals[{self.extra}]'`"
            )
        raise ImportError(f"no module named {top!r}")
