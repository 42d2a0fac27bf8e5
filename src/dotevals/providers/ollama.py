"""Ollama as a model provider: its OpenAI-compatible API, on a running server or one started."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from dotevals.providers._connectable import ConnectableServerProvider

__all__ = ["OllamaProvider", "ollama_url"]

#: Ollama's usual port.
OLLAMA_PORT = 11434


def ollama_url(host: str | None) -> str:
    """The OpenAI API root for ``$OLLAMA_HOST``-style ``host`` (``[scheme://]host[:port]``)."""
    value = (host or "").strip() or f"127.0.0.1:{OLLAMA_PORT}"
    if "://" not in value:
        value = "http://" + value
    scheme, _, rest = value.partition("://")
    address = rest.rstrip("/")
    if ":" not in address.rpartition("]")[2]:
        address += f":{OLLAMA_PORT}"
    return f"{scheme}://{address}/v1"


class OllamaProvider(ConnectableServerProvider):
    """Models served by Ollama, through its OpenAI-compatible API.

    By default it connects to the running Ollama at ``$OLLAMA_HOST`` (else
    ``127.0.0.1:11434``); the model must have been pulled (``ollama pull llama3.2``). With
    ``start=True`` it runs ``ollama serve`` per model on a free port from 11434 up, under the
    process supervisor; server options become Ollama's environment variables
    (``num_parallel=4`` gives ``OLLAMA_NUM_PARALLEL=4``, ``keep_alive="10m"`` gives
    ``OLLAMA_KEEP_ALIVE=10m``).

    Example::

        provider = OllamaProvider()                   # pytest --model ollama:llama3.2
        handle = await provider.setup("llama3.2")
        client = handle.model  # an openai.AsyncOpenAI client; client.model is the name
        await client.chat.completions.create(model=client.model, messages=[...])
        await handle.teardown()

    Takes the arguments of
    :class:`~dotevals.providers._connectable.ConnectableServerProvider`.
    """

    server_name = "ollama"
    default_executable = "ollama"
    default_port = OLLAMA_PORT
    default_health_path = "/v1/models"

    def default_base_url(self) -> str:
        """``$OLLAMA_HOST`` as an OpenAI API root, else ``http://127.0.0.1:11434/v1``."""
        return ollama_url(os.environ.get("OLLAMA_HOST"))

    def build_command(self, spec: str, port: int, config: Mapping[str, Any]) -> list[str]:
        """``ollama serve`` (its address and options are in its environment)."""
        return [*self.executable, "serve"]

    def server_env(self, secret: str, port: int, config: Mapping[str, Any]) -> dict[str, str]:
        """``OLLAMA_HOST=host:port`` and one ``OLLAMA_<NAME>`` variable per option."""
        env = super().server_env(secret, port, config)
        env["OLLAMA_HOST"] = f"{self.host}:{port}"
        for key, value in config.items():
            if value is not None:
                env[f"OLLAMA_{key.upper()}"] = str(value).lower() if value is True else str(value)
        return env
