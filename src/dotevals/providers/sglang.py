"""SGLang's OpenAI-compatible server as a shared, leak-free model provider."""

from __future__ import annotations

from dotevals.providers._module_server import ModuleServerProvider

__all__ = ["SGLangProvider"]


class SGLangProvider(ModuleServerProvider):
    """Serves models with SGLang: one server per model and config, on the next free port.

    The server runs ``python -m sglang.launch_server --model-path M --port P --host H
    --api-key K`` followed by flags made from the constructor's ``defaults`` and the config
    given to ``setup`` (which wins): ``tp_size=2`` gives ``--tp-size 2``,
    ``mem_fraction_static=0.8`` gives ``--mem-fraction-static 0.8``. The random API key is
    masked wherever the command is shown.

    Example::

        provider = SGLangProvider(mem_fraction_static=0.8)
        handle = await provider.setup("Qwen/Qwen2.5-0.5B-Instruct", context_length=4096)
        client = handle.model  # an openai.AsyncOpenAI client; client.model is the name
        await client.chat.completions.create(model=client.model, messages=[...])
        await handle.teardown()

    Takes the arguments of :class:`~dotevals.providers._module_server.ModuleServerProvider`
    (``base_port`` 30000 by default, ``module``, ``startup_timeout``, ``stop_grace``, ``env``,
    ``host``, ``log_dir``, and SGLang options as keywords).
    """

    server_name = "sglang"
    default_module = "sglang.launch_server"
    extra = "sglang"
    default_port = 30000
    model_flag = "--model-path"
    default_health_path = "/health"

    def key_flags(self) -> list[str]:
        """``--api-key {api_key}``: SGLang takes its key on the command line."""
        return ["--api-key", "{api_key}"]
