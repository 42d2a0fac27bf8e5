"""llama.cpp's ``llama-server`` as a model provider: a running server, or one started."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dotevals.providers._connectable import ConnectableServerProvider
from dotevals.providers.server import config_flags

__all__ = ["LlamaCppProvider"]


class LlamaCppProvider(ConnectableServerProvider):
    """Models served by llama.cpp's ``llama-server`` (a GGUF file on a laptop, say).

    By default it connects to the running server at ``http://127.0.0.1:8080/v1``. With
    ``start=True`` the spec is the path of a GGUF file and it runs ``llama-server -m PATH
    --host H --port P`` plus flags from options (``ctx_size=4096`` gives ``--ctx-size 4096``,
    ``n_gpu_layers=99`` gives ``--n-gpu-layers 99``) on a free port from 8080 up, under the
    process supervisor; the server's random API key goes in ``LLAMA_API_KEY``, which
    ``llama-server`` reads.

    Example::

        provider = LlamaCppProvider(start=True, ctx_size=4096)
        handle = await provider.setup("models/qwen2.5-0.5b-instruct-q4_k_m.gguf")
        client = handle.model  # an openai.AsyncOpenAI client
        await client.chat.completions.create(model=client.model, messages=[...])
        await handle.teardown()

    Takes the arguments of
    :class:`~dotevals.providers._connectable.ConnectableServerProvider`.
    """

    api_key_env = "LLAMA_API_KEY"
    server_name = "llamacpp"
    default_executable = "llama-server"
    default_port = 8080
    default_health_path = "/health"

    def build_command(self, spec: str, port: int, config: Mapping[str, Any]) -> list[str]:
        """``llama-server -m MODEL --host H --port P`` plus flags from ``config``."""
        base = [*self.executable, "-m", "{model}", "--host", "{host}", "--port", str(port)]
        return [*base, *config_flags(config)]
