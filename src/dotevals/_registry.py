"""The one reader of entry points: providers, storage, datasets, evaluators and metrics."""

from __future__ import annotations

import sys
from functools import cache
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from dotevals.errors import PluginLoadError

__all__ = [
    "describe_entry_point",
    "entry_point_distribution",
    "entry_point_name_of",
    "entry_point_names",
    "load_entry_point",
    "load_group",
]


def _group(group: str) -> dict[str, EntryPoint]:
    """The entry points of ``group`` by name (the first of a name wins).

    Scanning the installed distributions costs milliseconds, and a pytest session asks several
    times at start-up: the scan is kept for as long as ``sys.path`` (where distributions are
    found) stays the same.
    """
    return _scan(group, tuple(sys.path))


@cache
def _scan(group: str, path: tuple[str, ...]) -> dict[str, EntryPoint]:
    found: dict[str, EntryPoint] = {}
    for ep in entry_points(group=group):
        found.setdefault(ep.name, ep)
    return found


def entry_point_names(group: str) -> list[str]:
    """Names registered in ``group``, sorted, without importing anything."""
    return sorted(_group(group))


def entry_point_distribution(group: str, name: str) -> str | None:
    """The distribution that registered ``name`` in ``group`` (None if unknown)."""
    ep = _group(group).get(name)
    return ep.dist.name if ep is not None and ep.dist is not None else None


def load_entry_point(group: str, name: str) -> Any:
    """Import the object registered as ``name`` in ``group``.

    Raises:
        PluginLoadError: the name is unknown, or its module fails to import (whatever it
            raises), or the object is missing. The message names the entry point, its
            distribution and the cause, which is chained.
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


def entry_point_name_of(group: str, obj: Any) -> str | None:
    """The name ``obj`` is registered under in ``group``, or None; imports nothing.

    An entry point names ``obj`` when its value is ``obj``'s ``module:qualname``, or when its
    module is already imported and its attribute is ``obj`` (an alias).
    """
    where = f"{getattr(obj, '__module__', '')}:{getattr(obj, '__qualname__', '')}"
    for name, ep in sorted(_group(group).items()):
        if ep.value == where or _imported_attr(ep) is obj:
            return name
    return None


def _imported_attr(ep: EntryPoint) -> Any:
    module = sys.modules.get(ep.module)
    return getattr(module, ep.attr, None) if module is not None and ep.attr else None


def describe_entry_point(group: str, name: str) -> str:
    """``entry point 'NAME' = 'module:attr' in group 'GROUP' (from DIST)``, for error messages.

    Use it wherever a loaded object is rejected, so that every plugin error names the entry
    point and its distribution; an unknown name is described by name and group alone.
    """
    ep = _group(group).get(name)
    return _describe(ep, group) if ep is not None else f"entry point {name!r} in group {group!r}"


def _describe(ep: EntryPoint, group: str) -> str:
    dist = ep.dist.name if ep.dist is not None else "unknown distribution"
    return f"entry point {ep.name!r} = {ep.value!r} in group {group!r} (from {dist})"


def _load(ep: EntryPoint, group: str) -> Any:
    try:
        return ep.load()
    # Loading an entry point runs a third party's module: that is the boundary where any error
    # (RuntimeError, SyntaxError, ...) must become one that names the plugin, not an
    # INTERNALERROR naming neither the entry point nor its distribution.
    except Exception as exc:
        raise PluginLoadError(
            f"{_describe(ep, group)} failed to load: {type(exc).__name__}: {exc}",
            group=group,
            name=ep.name,
        ) from exc


@cache
def load_group(group: str) -> dict[str, Any]:
    """Every object registered in ``group``, by name; a broken one raises PluginLoadError."""
    return {name: _load(ep, group) for name, ep in sorted(_group(group).items())}
