"""Model providers: set up and tear down model clients and local model servers.

``ModelProvider``, ``ModelHandle`` and ``ResourceHandle`` are the contract of the "Model
Providers API" page. Built-in providers are registered as entry points in the group
``dotevals.model_providers``, exactly as a third-party package registers its own.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from dotevals.providers.base import ModelHandle, ModelProvider, ResourceHandle

if TYPE_CHECKING:
    from dotevals.providers._pool import SharedResourceProvider
    from dotevals.providers.anthropic import AnthropicProvider
    from dotevals.providers.llamacpp import LlamaCppProvider
    from dotevals.providers.local import LocalModelProvider
    from dotevals.providers.ollama import OllamaProvider
    from dotevals.providers.openai import OpenAIProvider
    from dotevals.providers.server import LocalServerProvider
    from dotevals.providers.sglang import SGLangProvider
    from dotevals.providers.vllm import VLLMProvider

__all__ = [
    "AnthropicProvider",
    "LlamaCppProvider",
    "LocalModelProvider",
    "LocalServerProvider",
    "ModelHandle",
    "ModelProvider",
    "OllamaProvider",
    "OpenAIProvider",
    "ResourceHandle",
    "SGLangProvider",
    "SharedResourceProvider",
    "VLLMProvider",
]

# Built-in providers import their SDKs lazily: ``import dotevals.providers`` stays cheap.
_LAZY = {
    "AnthropicProvider": "dotevals.providers.anthropic",
    "LlamaCppProvider": "dotevals.providers.llamacpp",
    "OllamaProvider": "dotevals.providers.ollama",
    "SGLangProvider": "dotevals.providers.sglang",
    "LocalModelProvider": "dotevals.providers.local",
    "LocalServerProvider": "dotevals.providers.server",
    "OpenAIProvider": "dotevals.providers.openai",
    "SharedResourceProvider": "dotevals.providers._pool",
    "VLLMProvider": "dotevals.providers.vllm",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'dotevals.providers' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
