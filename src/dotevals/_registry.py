"""The one reader of entry points: providers, storage, datasets, evaluators and metrics."""

from __future__ import annotations

from functools import cache
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from dotevals.errors import PluginLoadError

__all__ = ["entry_point_names", "load_entry_point", "load_group"]


def _group(group: str) -> dict[str, EntryPoint]:
    found: dict[str, EntryPoint] = {}
    for ep in entry_points(group=group):
        found.setdefault(ep.name, ep)
    return found


def entry_point_names(group: str) -> list[str]:
    """Names registered in ``group``, sorted, without importing anything."""
    return sorted(_group(group))


def load_entry_point(group: str, name: str) -> Any:
    """Import the object registered as ``name`` in ``group``.

    Raises:
        PluginLoadError: the name is unknown, or its module fails to import, or the object is
            missing. The message names the entry point, its distribution and the cause.
    """
    eps = _group(group)
    if name not in eps:
        known = ", ".join(sorted(eps)) or "none"
        raise PluginLoadError(
            f"no {group!r} entry point named {name!r}; registered: {known}",
            group=group,
            name=name,
        )
    return _load(eps[name], group)


def _load(ep: EntryPoint, group: str) -> Any:
    dist = ep.dist.name if ep.dist is not None else "unknown distribution"
    try:
        return ep.load()
    except (ImportError, AttributeError) as exc:
        raise PluginLoadError(
            f"entry point {ep.name!r} = {ep.value!r} in group {group!r} "
            f"(from {dist}) failed to load: {type(exc).__name__}: {exc}",
            group=group,
            name=ep.name,
        ) from exc


@cache
def load_group(group: str) -> dict[str, Any]:
    """Every object registered in ``group``, by name; a broken one raises PluginLoadError."""
    return {name: _load(ep, group) for name, ep in sorted(_group(group).items())}
