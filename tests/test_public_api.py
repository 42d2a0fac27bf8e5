"""Every public module declares ``__all__``, and every name in it exists."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import dotevals

PUBLIC = sorted(
    m.name
    for m in pkgutil.walk_packages(dotevals.__path__, "dotevals.")
    if not any(part.startswith("_") for part in m.name.split(".")[1:])
    and not m.name.startswith("dotevals.demo.eval_")
    and m.name != "dotevals.pytest_plugin"
)


@pytest.mark.parametrize("module_name", PUBLIC)
def test_module_declares_all(module_name: str) -> None:
    module = importlib.import_module(module_name)
    names = getattr(module, "__all__", None)
    assert names is not None, f"{module_name} has no __all__"
    for name in names:
        assert hasattr(module, name), f"{module_name}.__all__ names missing {name!r}"


def test_seed_names_are_importable_as_the_page_writes_them() -> None:
    from dotevals.providers import ModelHandle, ModelProvider, ResourceHandle

    assert ResourceHandle is ModelHandle
    assert ModelProvider.__abstractmethods__ == frozenset({"setup", "teardown"})
