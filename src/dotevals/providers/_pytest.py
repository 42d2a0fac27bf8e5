"""pytest fixtures for model providers: ``model_providers``, ``NAME_provider``, ``--model``.

Every entry point of the ``dotevals.model_providers`` group is a provider. It names either a
:class:`~dotevals.providers.ModelProvider` subclass, instantiated once per session with no
arguments, or (for plugins written for dotevals 0.26) a pytest fixture whose value is the
provider. At ``pytest_configure`` this module imports them all (a plugin that fails to import
is a usage error naming it) and registers a plugin object holding these session fixtures
(:func:`configure`, called by the dotevals plugin with the session's settings):

* ``model_providers``: a dict, provider name -> provider; providers made here are closed
  (``aclose``) at the end of the session.
* ``NAME_provider`` for every provider name (``openai_provider``, ``vllm_provider``, ...). A
  fixture of the same name in a conftest or test module overrides it, as pytest does.
* ``model``: with ``--model PROVIDER:SPEC`` (``--dotevals-model``, repeatable) every
  evaluation taking ``model`` is parametrized over the models named (ids
  ``[openai:gpt-4o-mini]``). Each model is set up through ``PROVIDER_provider`` once per
  session, shared by every evaluation using it, and torn down after the last of them. A
  user's own ``model`` fixture overrides this one.
"""

from __future__ import annotations

import contextlib
import inspect
import sys
from collections.abc import AsyncIterator, Callable, Generator, Iterable, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, Final

import pytest
import pytest_asyncio

from dotevals._names import PROVIDER_ATTR
from dotevals._pytest_internals import closest_fixture_func, is_fixture_definition
from dotevals._registry import (
    describe_entry_point,
    entry_point_distribution,
    entry_point_names,
    load_entry_point,
)
from dotevals.errors import PluginLoadError, ProviderError
from dotevals.providers._pool import SharedResourceProvider
from dotevals.providers._recipes import ModelRecipe, record_setups
from dotevals.providers.base import ModelHandle, ModelProvider

if TYPE_CHECKING:
    from dotevals.providers.server import SessionDefaults

__all__ = [
    "GROUP",
    "MODELS_KEY",
    "PLUGIN_NAME",
    "ProviderEntry",
    "apply_session_defaults",
    "configure",
    "load_providers",
    "parse_model_option",
    "uses_providers",
]

#: The entry-point group of model providers.
GROUP: Final = "dotevals.model_providers"
#: The name under which the plugin object holding the generated fixtures is registered.
PLUGIN_NAME: Final = "dotevals-provider-fixtures"
#: Marks the fixture functions made here, so a user's own fixture of the same name is told apart.
BUILTIN_ATTR: Final = "_dotevals_builtin_fixture"

#: The ``--model`` values of the session, as the dotevals plugin resolved them.
MODELS_KEY: Final = pytest.StashKey[tuple[str, ...]]()
_SESSION: Final = "session"
_OWN_DISTRIBUTION: Final = "dotevals"
_LOG_DIR_KEY: Final = pytest.StashKey[Path | None]()
_SERVER_DEFAULTS_KEY: Final[pytest.StashKey[SessionDefaults]] = pytest.StashKey()


@dataclass(frozen=True)
class ProviderEntry:
    """A registered provider: a class to instantiate, or a fixture that returns the provider.

    Attributes:
        name: The entry point's name (``openai``).
        factory: The ``ModelProvider`` subclass, or None for a fixture entry point.
        fixture: The name of the fixture whose value is the provider, or None.
    """

    name: str
    factory: type[ModelProvider] | None = None
    fixture: str | None = None
    #: A provider class of dotevals itself, imported when the session first needs it.
    lazy: bool = False

    def provider_class(self) -> type[ModelProvider] | None:
        """The class to instantiate (importing a built-in one now), or None for a fixture."""
        if not self.lazy:
            return self.factory
        loaded = load_entry_point(GROUP, self.name)
        if not (inspect.isclass(loaded) and issubclass(loaded, ModelProvider)):
            raise ProviderError(
                f"{describe_entry_point(GROUP, self.name)} is not a ModelProvider subclass",
                provider=self.name,
                spec="",
            )
        return loaded


def _classify(name: str, obj: Any, config: pytest.Config) -> ProviderEntry:
    """What an entry point names; a fixture's module is registered as a plugin."""
    if inspect.isclass(obj) and issubclass(obj, ModelProvider):
        return ProviderEntry(name, factory=obj)
    if is_fixture_definition(obj):
        module = sys.modules.get(obj.__module__)
        if isinstance(module, ModuleType) and not config.pluginmanager.is_registered(module):
            config.pluginmanager.register(module)
        return ProviderEntry(name, fixture=obj.name)
    raise pytest.UsageError(
        f"{describe_entry_point(GROUP, name)} names {obj!r}: expected a ModelProvider "
        "subclass or a pytest fixture that returns a provider"
    )


def load_providers(config: pytest.Config) -> list[ProviderEntry]:
    """Import every provider registered by another distribution; ours load on first use.

    dotevals' own entry points name provider classes (a test checks), so a session that sets
    up no model never imports their SDKs.

    Raises:
        pytest.UsageError: An entry point fails to import (the message names it, its
            distribution and the error) or names something that is not a provider.
    """
    entries = []
    for name in entry_point_names(GROUP):
        if entry_point_distribution(GROUP, name) == _OWN_DISTRIBUTION:
            entries.append(ProviderEntry(name, lazy=True))
            continue
        try:
            loaded = load_entry_point(GROUP, name)
        except PluginLoadError as exc:
            raise pytest.UsageError(f"dotevals could not load a model provider: {exc}") from exc
        entries.append(_classify(name, loaded, config))
    return entries


def parse_model_option(value: str, known: Iterable[str]) -> tuple[str, str]:
    """Split ``PROVIDER:SPEC`` given to ``--model``.

    Raises:
        pytest.UsageError: No ``:``, an empty part, or a provider that is not registered.
    """
    provider, sep, spec = value.partition(":")
    names = sorted(known)
    if not sep or not provider or not spec:
        raise pytest.UsageError(
            f"--model {value!r}: expected PROVIDER:SPEC, e.g. openai:gpt-4o-mini "
            f"(registered providers: {', '.join(names) or 'none'})"
        )
    if provider not in names:
        raise pytest.UsageError(
            f"--model {value!r}: no model provider named {provider!r}; registered providers: "
            f"{', '.join(names) or 'none'} (entry-point group {GROUP!r})"
        )
    return provider, spec


def _model_options(config: pytest.Config) -> tuple[str, ...]:
    """The ``--model`` values the plugin resolved, in order, without duplicates."""
    return config.stash.get(MODELS_KEY, ())


def configure(
    config: pytest.Config,
    models: Sequence[str],
    log_dir: Path | None,
) -> None:
    """Check the ``--model`` values, import the providers and register their fixtures.

    Called by the dotevals plugin at ``pytest_configure`` with the session's settings.
    """
    config.stash[MODELS_KEY] = tuple(models)
    config.stash[_LOG_DIR_KEY] = log_dir
    names = entry_point_names(GROUP)
    parsed = [parse_model_option(value, names) for value in models]
    entries = load_providers(config)
    if not config.pluginmanager.has_plugin(PLUGIN_NAME):
        plugin = _fixture_plugin(entries, sorted({provider for provider, _ in parsed}))
        config.pluginmanager.register(plugin, PLUGIN_NAME)


def _terminal_notice(config: pytest.Config) -> Callable[[str], None]:
    """Writes a line on pytest's terminal, around the capture of fixture output."""

    def notify(message: str) -> None:
        reporter = config.pluginmanager.get_plugin("terminalreporter")
        if reporter is None:
            return
        capture = config.pluginmanager.get_plugin("capturemanager")
        suspended = capture.global_and_fixture_disabled() if capture else nullcontext()
        with suspended:
            reporter.ensure_newline()
            reporter.write_line(message)

    return notify


def uses_providers(items: Iterable[pytest.Item]) -> bool:
    """Whether any item needs the provider fixtures (so local servers may start)."""
    return any("model_providers" in getattr(item, "fixturenames", ()) for item in items)


def apply_session_defaults(config: pytest.Config) -> None:
    """Local servers started in this session log under the store and report on its terminal.

    Called once collection shows the session runs evaluations or uses providers, so that a
    session doing neither never imports the server machinery.
    """
    from dotevals.providers.server import SessionDefaults

    log_dir = config.stash.get(_LOG_DIR_KEY, None)
    config.stash[_SERVER_DEFAULTS_KEY] = SessionDefaults(log_dir, _terminal_notice(config))


@pytest.hookimpl(wrapper=True)
def pytest_runtestloop(session: pytest.Session) -> Generator[None, object, object]:
    """Run the tests (and so their fixtures) with this session's server defaults, if any.

    They hold only for the span of the loop: a session run inside another one (pytester's
    in-process runs) leaves the outer session's defaults as they were.
    """
    defaults = session.config.stash.get(_SERVER_DEFAULTS_KEY, None)
    if defaults is None:
        return (yield)
    from dotevals.providers.server import using_session_defaults

    with using_session_defaults(defaults):
        return (yield)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrize ``model`` over the ``--model`` values where our ``model`` fixture is used."""
    specs = _model_options(metafunc.config)
    if not specs or "model" not in metafunc.fixturenames:
        return
    if _parametrized_by_user(metafunc) or not _builtin_model_in_effect(metafunc):
        return
    metafunc.parametrize("model", specs, indirect=True, ids=specs, scope=_SESSION)


def _parametrized_by_user(metafunc: pytest.Metafunc) -> bool:
    for mark in metafunc.definition.iter_markers("parametrize"):
        argnames = mark.args[0] if mark.args else mark.kwargs.get("argnames", ())
        if isinstance(argnames, str):
            argnames = [name.strip() for name in argnames.split(",")]
        if "model" in argnames:
            return True
    return False


def _builtin_model_in_effect(metafunc: pytest.Metafunc) -> bool:
    """Whether the ``model`` fixture this item would get is ours (not a user's override)."""
    func = closest_fixture_func(metafunc, "model")
    return func is None or bool(getattr(func, BUILTIN_ATTR, False))


# --- the fixtures ---------------------------------------------------------------------------


def _fixture_plugin(entries: Sequence[ProviderEntry], model_providers: Sequence[str]) -> ModuleType:
    """A plugin module holding ``model_providers``, the ``NAME_provider`` fixtures and ``model``.

    pytest reads fixtures from a plugin's attributes (a module's, or an instance's class's): a
    module made here is the simplest holder of functions made at run time.
    """
    plugin = ModuleType(PLUGIN_NAME, "Fixtures of the registered dotevals model providers.")
    fixtures = [_providers_fixture(entries), _model_fixture(model_providers, entries)]
    fixtures += [_named_fixture(entry) for entry in entries if not _is_own(entry)]
    for name, fixture in fixtures:
        setattr(plugin, name, fixture)
    return plugin


def _is_own(entry: ProviderEntry) -> bool:
    """Whether a 0.26-style entry point's fixture already is ``NAME_provider``."""
    return entry.fixture == f"{entry.name}_provider"


def _session_fixture(
    name: str, fn: Callable[..., Any], params: Sequence[str], *, is_async: bool
) -> tuple[str, Any]:
    """A session fixture called ``name`` taking the fixtures ``params``."""
    kind = inspect.Parameter.KEYWORD_ONLY
    fn.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [inspect.Parameter(param, kind) for param in params]
    )
    fn.__name__ = fn.__qualname__ = name
    setattr(fn, BUILTIN_ATTR, True)
    if is_async:
        return name, pytest_asyncio.fixture(fn, scope=_SESSION, loop_scope=_SESSION, name=name)
    return name, pytest.fixture(fn, scope=_SESSION, name=name)


def _providers_fixture(entries: Sequence[ProviderEntry]) -> tuple[str, Any]:
    """``model_providers``: every registered provider, made once; ours closed at the end."""
    fixture_names = [entry.fixture for entry in entries if entry.fixture is not None]

    async def model_providers(**fixture_values: Any) -> AsyncIterator[dict[str, Any]]:
        """Every registered model provider, by entry-point name."""
        made = {entry.name: _instantiate(entry) for entry in entries if entry.fixture is None}
        providers = {
            entry.name: made[entry.name] if entry.fixture is None else fixture_values[entry.fixture]
            for entry in entries
        }
        yield providers
        await _close_all(made.values())

    return _session_fixture("model_providers", model_providers, fixture_names, is_async=True)


def _instantiate(entry: ProviderEntry) -> ModelProvider:
    factory = entry.provider_class()
    assert factory is not None
    try:
        provider = factory()
    except Exception as exc:
        message = f"model provider {entry.name!r} could not be created: {type(exc).__name__}: {exc}"
        raise ProviderError(message, provider=entry.name, spec="") from exc
    return record_setups(provider, entry.name)  # its models can be set up again on a worker


async def _close_all(providers: Iterable[ModelProvider]) -> None:
    """``aclose()`` every shared-resource provider; the first error is raised after all ran."""
    errors: list[Exception] = []
    for provider in providers:
        if not isinstance(provider, SharedResourceProvider):
            continue
        try:
            await provider.aclose()
        except Exception as exc:  # noqa: BLE001 - close every provider, raise the first error
            errors.append(exc)
    if errors:
        raise errors[0]


def _named_fixture(entry: ProviderEntry) -> tuple[str, Any]:
    """``NAME_provider``: the provider registered as ``NAME``, shared by the session."""
    name = entry.name

    def provider(model_providers: Mapping[str, Any]) -> Any:
        return model_providers[name]

    provider.__doc__ = f"The {name!r} model provider of this session (from ``model_providers``)."
    fixture_name = f"{name}_provider"
    return _session_fixture(fixture_name, provider, ["model_providers"], is_async=False)


def _model_fixture(
    provider_names: Sequence[str], entries: Sequence[ProviderEntry]
) -> tuple[str, Any]:
    """``model``: the model named by ``--model``, set up once per session and shared."""
    registered = sorted(entry.name for entry in entries)
    params = ["request", *(f"{name}_provider" for name in provider_names)]

    async def model(request: pytest.FixtureRequest, **providers: Any) -> AsyncIterator[Any]:
        """The model given by ``--model PROVIDER:SPEC`` (one run per model)."""
        value = getattr(request, "param", None)
        if value is None:
            pytest.fail(_no_model_message(registered), pytrace=False)
        name, spec = parse_model_option(value, registered)
        if _rows_run_elsewhere(request.config):  # each Ray actor sets the model up itself
            yield ModelRecipe(name, spec)
            return
        provider = providers.get(f"{name}_provider")
        if provider is None:  # parametrized by hand: the provider was not named by --model
            provider = request.getfixturevalue(f"{name}_provider")
        handle = await _setup(provider, name, spec)
        _tag_provider(handle.model, name)
        try:
            yield handle.model
        finally:
            await handle.teardown()

    return _session_fixture("model", model, params, is_async=True)


def _rows_run_elsewhere(config: pytest.Config) -> bool:
    """Whether ``--dotevals-runner`` (or its ini key) sends the rows to other processes."""
    runner = config.getoption("dotevals_runner", None) or config.getini("dotevals_runner")
    return (runner or "local") != "local"


def _tag_provider(model: Any, name: str) -> None:
    """Note on the model which provider made it, for the store's header (where it can)."""
    with contextlib.suppress(AttributeError, TypeError):
        setattr(model, PROVIDER_ATTR, name)


def _no_model_message(registered: Sequence[str]) -> str:
    return (
        "this evaluation takes the `model` fixture but no model was given: pass "
        "--model PROVIDER:SPEC (e.g. --model openai:gpt-4o-mini; registered providers: "
        f"{', '.join(registered) or 'none'}), or define your own `model` fixture"
    )


async def _setup(provider: Any, name: str, spec: str) -> ModelHandle:
    """``provider.setup(spec)``; a failure becomes a ProviderError naming both."""
    try:
        handle: ModelHandle = await provider.setup(spec)
    except ProviderError:
        raise
    except Exception as exc:
        message = f"model provider {name!r} failed to set up {spec!r}: {type(exc).__name__}: {exc}"
        raise ProviderError(message, provider=name, spec=spec) from exc
    return handle
