"""The entry-point reader: any error a plugin raises while loading names the plugin."""

from __future__ import annotations

from importlib.metadata import EntryPoint
from pathlib import Path

import pytest

from dotevals._registry import _load, describe_entry_point, entry_point_name_of, load_entry_point
from dotevals.errors import PluginLoadError

GROUP = "dotevals.model_providers"


@pytest.mark.parametrize(
    ("source", "attr", "cause"),
    [
        ("raise RuntimeError('boom')\n", "X", RuntimeError),
        ("def broken(:\n", "X", SyntaxError),
        ("import no_such_module_anywhere\n", "X", ModuleNotFoundError),
        ("Y = 1\n", "X", AttributeError),
        ("raise KeyError('k')\n", "X", KeyError),
    ],
)
def test_any_load_error_becomes_a_plugin_load_error(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    source: str,
    attr: str,
    cause: type[BaseException],
) -> None:
    module = f"regmod_{cause.__name__.lower()}"
    (tmp_path / f"{module}.py").write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))
    ep = EntryPoint(name="bad", value=f"{module}:{attr}", group=GROUP)
    with pytest.raises(PluginLoadError) as info:
        _load(ep, GROUP)
    assert isinstance(info.value.__cause__, cause)
    assert (info.value.group, info.value.name) == (GROUP, "bad")
    message = str(info.value)
    assert f"'bad' = '{module}:{attr}'" in message and "(from unknown distribution)" in message
    assert cause.__name__ in message


def test_unknown_names_are_listed() -> None:
    with pytest.raises(PluginLoadError, match=r"no 'dotevals\.model_providers' entry point"):
        load_entry_point(GROUP, "surely-not-registered")


def test_describe_names_the_distribution() -> None:
    assert describe_entry_point(GROUP, "openai") == (
        "entry point 'openai' = 'dotevals.providers.openai:OpenAIProvider' in group "
        f"{GROUP!r} (from dotevals)"
    )
    assert describe_entry_point(GROUP, "nope") == f"entry point 'nope' in group {GROUP!r}"


def test_entry_point_name_of_finds_a_registered_class_without_importing() -> None:
    from dotevals.providers.openai import OpenAIProvider

    assert entry_point_name_of(GROUP, OpenAIProvider) == "openai"
    assert entry_point_name_of(GROUP, PluginLoadError) is None
    assert entry_point_name_of(GROUP, "openai") is None  # no __module__: nothing matches
