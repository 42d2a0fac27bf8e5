"""Servers run as ``python -m MODULE`` (vLLM, SGLang): flags from config, port from a base up."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Mapping
from typing import Any

from dotevals.providers._program_server import ProgramServerProvider

__all__ = ["ModuleServerProvider"]


class ModuleServerProvider(ProgramServerProvider):
    """Runs ``python -m <module> <model flag> M --port P --host H`` plus flags from config.

    The flags come from the constructor's ``defaults`` and the config given to ``setup``
    (which wins): ``tensor_parallel_size=2`` gives ``--tensor-parallel-size 2``,
    ``enforce_eager=True`` gives ``--enforce-eager``. Subclasses name the server.

    Args:
        base_port: Servers listen on the first free port from here up (default: the
            server's usual port).
        module: The module run with ``python -m`` (tests use a stand-in server).
        **options: The arguments of
            :class:`~dotevals.providers._program_server.ProgramServerProvider`
            (``startup_timeout``, ``env``, ``log_dir``, ...) and server options applied to every
            model, as keyword arguments.
    """

    #: The provider's name (entry point, log files, errors).
    server_name = "module"
    #: The module run by default, and the pip extra that installs it.
    default_module = ""
    extra = ""
    #: The flag that names the model.
    model_flag = "--model"

    def __init__(
        self, base_port: int | None = None, *, module: str | None = None, **options: Any
    ) -> None:
        super().__init__(**options)
        if base_port is not None:
            self.base_port = base_port
        self.module = module or self.default_module

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
