"""Recipes: how to set a model up again on another machine (a Ray worker).

A client or a server cannot be pickled, but what made it can: the provider's entry-point name,
the spec and the config given to ``setup``. Providers that the pytest plugin makes record a
recipe for every model they set up (:func:`record_setups`); anyone else says it with
:func:`rebuildable`, or passes a :class:`ModelRecipe` itself.
"""

from __future__ import annotations

import json
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar

from dotevals._registry import entry_point_names, load_entry_point
from dotevals.errors import ConfigurationError
from dotevals.providers.base import ModelHandle, ModelProvider

__all__ = ["ModelRecipe", "rebuildable", "recipe_for", "record_setups"]

GROUP: Final = "dotevals.model_providers"
T = TypeVar("T")


@dataclass(frozen=True)
class ModelRecipe:
    """``provider.setup(spec, **config)`` for the provider registered as ``provider``.

    Attributes:
        provider: the entry-point name in ``dotevals.model_providers`` (``openai``).
        spec: the resource spec (``gpt-4o-mini``, a model path).
        config: keyword arguments of ``setup``; they must pickle.
        as_handle: give the handle itself, not its ``model`` (for fixtures yielding handles).
    """

    provider: str
    spec: str
    config: Mapping[str, Any] = field(default_factory=dict)
    as_handle: bool = False

    def key(self) -> str:
        """The same for two recipes that set up the same model (``as_handle`` aside)."""
        return json.dumps(
            [self.provider, self.spec, dict(self.config)], sort_keys=True, default=repr
        )

    def __repr__(self) -> str:  # config values may hold secrets: only their names are shown
        return f"ModelRecipe({self.provider!r}, {self.spec!r}, config keys {sorted(self.config)})"

    async def setup(self) -> ModelHandle:
        """A fresh provider from its entry point, and a handle set up by it.

        Raises:
            ConfigurationError: no provider of that name is registered here, or the entry
                point names a fixture (a provider made by a fixture cannot be made here).
        """
        known = entry_point_names(GROUP)
        if self.provider not in known:
            raise ConfigurationError(
                f"{self!r}: no model provider {self.provider!r} is installed here (registered: "
                f"{', '.join(known) or 'none'}); install the package that provides it"
            )
        factory = load_entry_point(GROUP, self.provider)
        if not (isinstance(factory, type) and issubclass(factory, ModelProvider)):
            raise ConfigurationError(
                f"{self!r}: the entry point {self.provider!r} names a fixture, not a "
                "ModelProvider class, so it cannot be set up outside pytest"
            )
        handle: ModelHandle = await factory().setup(self.spec, **dict(self.config))
        return handle


#: id(model) -> (a weak reference to it, its recipe); an entry goes when the model goes.
_RECIPES: dict[int, tuple[weakref.ref[Any], ModelRecipe]] = {}


def rebuildable(model: T, provider: str, spec: str, **config: Any) -> T:
    """Say how ``model`` is set up again elsewhere, and return it (``yield rebuildable(...)``).

    Example::

        handle = await my_provider.setup("gpt-4o-mini", base_url=url)
        yield rebuildable(handle.model, "openai", "gpt-4o-mini", base_url=url)

    Raises:
        ConfigurationError: ``model`` cannot be referenced weakly (an int, a str...): such a
            value is sent to workers as it is, and needs no recipe.
    """
    key = id(model)
    try:
        ref = weakref.ref(model, lambda _ref: _RECIPES.pop(key, None))
    except TypeError as exc:
        raise ConfigurationError(
            f"{type(model).__name__} values need no recipe: they are sent to workers as they are"
        ) from exc
    _RECIPES[key] = (ref, ModelRecipe(provider, spec, dict(config)))
    return model


def recipe_for(value: Any) -> ModelRecipe | None:
    """The recipe of a fixture value: a recipe itself, a recorded model, or a handle on one."""
    if isinstance(value, ModelRecipe):
        return value
    if isinstance(value, ModelHandle):
        recipe = recipe_for(value.model)
        return None if recipe is None else ModelRecipe(**{**vars(recipe), "as_handle": True})
    entry = _RECIPES.get(id(value))
    if entry is None or entry[0]() is not value:
        return None
    return entry[1]


def record_setups(provider: ModelProvider, name: str) -> ModelProvider:
    """Make ``provider`` (registered as ``name``) record a recipe for each model it sets up."""
    setup = provider.setup

    async def recorded(resource_spec: str, **config: Any) -> ModelHandle:
        handle = await setup(resource_spec, **config)
        try:
            rebuildable(handle.model, name, resource_spec, **config)
        except ConfigurationError:
            pass  # a plain value: it travels as it is
        return handle

    recorded.__doc__ = setup.__doc__
    provider.setup = recorded  # type: ignore[method-assign]
    return provider
