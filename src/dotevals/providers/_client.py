"""OpenAI SDK clients bound to a model name: what built-in providers hand to evaluations."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from openai import AsyncOpenAI

__all__ = ["import_openai", "make_client"]

_MISSING_OPENAI = (
    "the openai provider needs the openai SDK: install it with `pip install 'dotevals[openai]'`"
)


def import_openai() -> Any:
    """The ``openai`` module, or an ImportError that names the extra to install."""
    try:
        import openai
    except ImportError as exc:
        raise ImportError(_MISSING_OPENAI) from exc
    return openai


def make_client(model_name: str, **options: Any) -> AsyncOpenAI:
    """An ``openai.AsyncOpenAI`` client whose ``.model`` attribute holds ``model_name``.

    ``options`` are the SDK's constructor arguments (``api_key``, ``base_url``, ``timeout``,
    ``max_retries``, ``default_headers``, ``http_client``); values left out come from the
    environment as the SDK reads it. Retries default to 0: the engine owns the retry policy.
    """
    openai = import_openai()
    options = {k: v for k, v in options.items() if v is not None}
    options.setdefault("max_retries", 0)
    client: AsyncOpenAI = openai.AsyncOpenAI(**options)
    client.model = model_name  # type: ignore[attr-defined]
    return client
