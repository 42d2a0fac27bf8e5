"""vLLM's OpenAI-compatible server as a shared, leak-free model provider."""

from __future__ import annotations

from dotevals.providers._module_server import ModuleServerProvider

__all__ = ["VLLMProvider"]


class VLLMProvider(ModuleServerProvider):
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

    Takes the arguments of :class:`~dotevals.providers._module_server.ModuleServerProvider`
    (``base_port`` 8000 by default, ``module``, ``startup_timeout``, ``stop_grace``, ``env``,
    ``host``, ``log_dir``, and vLLM options as keywords).
    """

    api_key_env = "VLLM_API_KEY"
    server_name = "vllm"
    default_module = "vllm.entrypoints.openai.api_server"
    extra = "vllm"
    default_port = 8000
