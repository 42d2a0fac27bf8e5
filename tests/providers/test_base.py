"""Handles know their provider: the handle's ``manager``, and that of the model it holds."""

from __future__ import annotations

import gc
import weakref
from typing import Any

from dotevals.providers import ModelHandle, ModelProvider
from dotevals.providers.base import _MANAGERS, manager_class, provider_name


class Mine(ModelProvider):
    """A provider no entry point registers: it is named by its class."""

    async def setup(self, resource_spec: str, **config: Any) -> ModelHandle:
        return ModelHandle(resource_spec, Client(resource_spec), self)  # the page's positional form

    async def teardown(self, resource_id: str) -> None:
        pass


class Client:
    def __init__(self, model: str) -> None:
        self.model = model


class Slotted:
    __slots__ = ("model",)

    def __init__(self, model: str) -> None:
        self.model = model


async def test_a_handle_and_its_model_name_the_provider_class() -> None:
    handle = await Mine().setup("m")
    assert provider_name(handle) == "Mine"
    assert provider_name(handle.model) == "Mine"
    assert manager_class(handle.model) is Mine
    assert provider_name(Client("m")) is None  # no handle was made for this one


def test_models_without_weak_references_still_make_handles() -> None:
    for model in ("gpt-4o", Slotted("gpt-4o"), 42):
        handle = ModelHandle("r", model, Mine())
        assert handle.model is model
        assert provider_name(handle) == "Mine"  # the handle itself still knows
        assert provider_name(model) is None


def test_the_registry_keeps_no_model_alive() -> None:
    model = Client("m")
    ModelHandle("r", model, Mine())
    key, ref = id(model), weakref.ref(model)
    assert key in _MANAGERS
    del model
    gc.collect()
    assert ref() is None
    assert key not in _MANAGERS
