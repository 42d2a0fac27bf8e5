"""Cost from a price table the user supplies: dotevals ships no prices.

A table is a TOML file of prices in US dollars per million tokens::

    [models."gpt-4o-mini"]
    input = 0.15          # prompt tokens
    output = 0.60         # completion tokens
    cached_input = 0.075  # cached prompt tokens (optional; default: the input price)

Models missing from the table have usage and no cost. ``genai-prices`` instead of a path uses
the maintained prices of the ``genai-prices`` package (``pip install "dotevals[prices]"``).
"""

from __future__ import annotations

import math
import sys
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from dotevals.errors import ConfigurationError
from dotevals.results import Usage

__all__ = ["GENAI_PRICES", "GenaiPrices", "Price", "PriceTable", "Prices", "load_prices"]

#: What ``--prices`` takes to use the ``genai-prices`` package instead of a table.
GENAI_PRICES: Final = "genai-prices"

_KEYS: Final = ("input", "output", "cached_input")
_PER_TOKENS: Final = 1_000_000


@dataclass(frozen=True)
class Price:
    """US dollars per million prompt, completion and cached prompt tokens."""

    input: float
    output: float
    cached_input: float | None = None

    def cost(self, usage: Usage) -> float:
        """What ``usage`` costs at this price."""
        cached = min(usage.cached_tokens, usage.prompt_tokens)
        cached_price = self.input if self.cached_input is None else self.cached_input
        dollars = (usage.prompt_tokens - cached) * self.input
        dollars += cached * cached_price + usage.completion_tokens * self.output
        return dollars / _PER_TOKENS


class Prices(ABC):
    """Where costs come from: a user's table or the ``genai-prices`` package."""

    @abstractmethod
    def cost(self, model: str | None, usage: Usage | None) -> float | None:
        """What ``usage`` of ``model`` costs; None when the model has no price or no usage."""

    def costs(self, usage_by_model: dict[str, Usage]) -> dict[str, float]:
        """The cost of each model's usage, for the models this table prices."""
        found = {m: self.cost(m, u) for m, u in usage_by_model.items()}
        return {m: c for m, c in found.items() if c is not None}


@dataclass(frozen=True)
class PriceTable(Prices):
    """Prices by model name, read from :attr:`source`."""

    prices: dict[str, Price]
    source: str = ""

    def cost(self, model: str | None, usage: Usage | None) -> float | None:
        """What ``usage`` of ``model`` costs; None when the model has no price or no usage."""
        price = self.prices.get(model) if model is not None else None
        if price is None or usage is None:
            return None
        return price.cost(usage)


class GenaiPrices(Prices):
    """Costs from the maintained ``genai-prices`` package (pydantic's), matched by model name.

    Raises:
        ConfigurationError: the package is not installed; the message names the extra.
    """

    def __init__(self) -> None:
        try:
            import genai_prices
        except ImportError as exc:
            raise ConfigurationError(
                f"--prices {GENAI_PRICES} needs the genai-prices package: "
                'pip install "dotevals[prices]"'
            ) from exc
        self._module: Any = genai_prices

    def cost(self, model: str | None, usage: Usage | None) -> float | None:
        if model is None or usage is None:
            return None
        tokens = self._module.Usage(
            input_tokens=usage.prompt_tokens,
            output_tokens=usage.completion_tokens,
            cache_read_tokens=min(usage.cached_tokens, usage.prompt_tokens),
        )
        try:
            found = self._module.calc_price(tokens, model_ref=model)
        except LookupError:  # a model the package does not know: usage without cost
            return None
        return float(found.total_price)


def load_prices(path: str | Path) -> Prices:
    """Read a price table (see the module's docs); ``genai-prices`` uses that package.

    Raises:
        ConfigurationError: the file is missing or malformed; the message names the file, the
            line and the key.
    """
    if str(path) == GENAI_PRICES:
        return GenaiPrices()
    tomllib = _toml()
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigurationError(f"price table {str(file)!r}: cannot read it: {exc}") from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"price table {file}: not valid TOML: {exc}") from exc
    models = data.get("models")
    if not isinstance(models, dict):
        raise ConfigurationError(
            f'price table {file}: no [models."NAME"] tables; give each model '
            "input = and output = prices in dollars per million tokens"
        )
    prices = {name: _price(file, text, name, entry) for name, entry in models.items()}
    return PriceTable(prices, str(file))


def _toml() -> Any:
    """The TOML reader: ``tomllib`` (Python 3.11+), or ``tomli`` on Python 3.10."""
    if sys.version_info >= (3, 11):
        import tomllib

        return tomllib
    try:  # pragma: no cover -- Python 3.10
        import tomli  # type: ignore[import-not-found,unused-ignore]
    except ImportError as exc:  # pragma: no cover
        raise ConfigurationError(
            "reading a price table on Python 3.10 needs tomli: `pip install tomli`"
        ) from exc
    return tomli  # pragma: no cover


def _price(file: Path, text: str, model: str, entry: Any) -> Price:
    if not isinstance(entry, dict):
        raise _bad(file, text, model, None, "is not a table of prices")
    unknown = sorted(set(entry) - set(_KEYS))
    if unknown:
        raise _bad(file, text, model, unknown[0], f"unknown key; known: {', '.join(_KEYS)}")
    for key in ("input", "output"):
        if key not in entry:
            raise _bad(file, text, model, None, f"has no {key} = price")
    for key, value in entry.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
            raise _bad(file, text, model, key, f"{value!r} is not a price (a number >= 0)")
        if not math.isfinite(value):
            raise _bad(file, text, model, key, f"{value!r} is not a finite price")
    cached = entry.get("cached_input")
    cached_price = None if cached is None else float(cached)
    return Price(float(entry["input"]), float(entry["output"]), cached_price)


def _bad(file: Path, text: str, model: str, key: str | None, why: str) -> ConfigurationError:
    where = f"models.{model!r}" + (f".{key}" if key else "")
    return ConfigurationError(f"price table {file}:{_line_of(text, model, key)}: {where} {why}")


def _line_of(text: str, model: str, key: str | None) -> int:
    """The line of ``key`` in the table of ``model`` (or of that table), counting from 1."""
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if model in line and "[" in line), 0)
    if key is None:
        return start + 1
    for i in range(start, len(lines)):
        if lines[i].strip().startswith(key):
            return i + 1
    return start + 1
