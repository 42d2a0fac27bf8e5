"""vLLM's OpenAI-compatible server as a shared, leak-free model provider."""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Mapping
from typing import Any

from dotevals.providers.server import LocalServerProvider, next_free_port

__all__ = ["VLLMProvider"]

_VLLM_MODULE = "vllm.entrypoints.openai.api_server"
_MISSING_VLLM = (
    "the vllm provider needs vLLM installed in the running Python: "
    "install it with `pip install 'dotevals[vllm]'`"
)


class VLLMProvider(LocalServerProvider):
    """Serves models with vLLM: one server per model and config, on the next free port.

    The server runs ``python -m vllm.entrypoints.openai.api_server --model M --port P
    --host H`` followed by flags made from the constructor's ``defaults`` and the config given
    to ``setup`` (which wins): ``tensor_parallel_size=2`` gives ``--tensor-parallel-size 2``,
    ``enforce_eager=True`` gives ``--enforce-eager``. The server's random API key goes in the
    ``VLLM_API_KEY`` environment variable, which vLLM reads: on the command line it would show
    in process listings and in the arguments vLLM writes to its log.

    Example::

        provider = VLLMProvider(base_port=8000, gpu_memory_utilization=0.8)
        handle = await provider.setup("Qwen/Qwen2.5-0.5B-Instruct", max_model_len=2048)
        client = handle.model  # an openai.AsyncOpenAI client; client.model is the name
        await client.chat.completions.create(model=client.model, messages=[...])
        await handle.teardown()

    Args:
        base_port: Servers listen on the first free port from here up.
        module: The module run with ``python -m`` (tests use a stand-in server).
        startup_timeout: Seconds to wait for the model to load before giving up.
        stop_grace: Seconds between SIGTERM and SIGKILL when stopping.
        env: Variables added to the server's environment (e.g. ``CUDA_VISIBLE_DEVICES``).
        host: Address the server binds and the client connects to.
        log_dir: Directory of server logs (default ``$DOTEVALS_LOG_DIR`` or ``.dotevals/logs``).
        **defaults: vLLM options applied to every model, as keyword arguments.
    """

    api_key_env = "VLLM_API_KEY"

    def __init__(
        self,
        base_port: int = 8000,
        *,
        module: str = _VLLM_MODULE,
        startup_timeout: float = 600.0,
        stop_grace: float = 10.0,
        env: Mapping[str, str] | None = None,
        host: str = "127.0.0.1",
        log_dir: str | os.PathLike[str] | None = None,
        **defaults: Any,
    ) -> None:
        super().__init__(
            [],
            health_path="/v1/models",
            startup_timeout=startup_timeout,
            env=env,
            host=host,
            log_dir=log_dir,
            stop_grace=stop_grace,
            name="vllm",
        )
        self.base_port = base_port
        self.module = module
        self.defaults = defaults

    def choose_port(self) -> int:
        """The first free port from ``base_port`` up, never one handed out before."""
        return next_free_port(self.base_port, self.host)

    def build_command(self, spec: str, port: int, config: Mapping[str, Any]) -> list[str]:
        """``python -m <module> --model M --port P --host H`` plus vLLM flags.

        Raises:
            ImportError: vLLM is not installed (and ``module`` is vLLM's).
        """
        self._require_module()
        base = [sys.executable, "-m", self.module, "--model", "{model}", "--port", str(port)]
        flags = super().build_command(spec, port, {**self.defaults, **config})
        return [*base, "--host", "{host}", *flags]

    def _require_module(self) -> None:
        top = self.module.partition(".")[0]
        try:
            found = importlib.util.find_spec(top) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            raise ImportError(_MISSING_VLLM if top == "vllm" else f"no module named {top!r}")
