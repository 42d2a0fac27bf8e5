"""What the plugin keeps for a session: settings, experiment, the store, the reports.

Light to import: made at ``pytest_configure`` of every session, before anything is collected.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from dotevals._names import new_experiment_name
from dotevals.errors import DotevalsError
from dotevals.pytest_plugin._options import Settings
from dotevals.storage import Storage, open_storage

__all__ = ["STATE_KEY", "SessionState", "worker_experiment"]

#: The key under which an xdist controller hands its experiment name to its workers.
XDIST_EXPERIMENT = "dotevals_experiment"


def worker_experiment(config: pytest.Config) -> str | None:
    """The experiment name the controller chose, when this process is an xdist worker."""
    workerinput: dict[str, Any] | None = getattr(config, "workerinput", None)
    return None if workerinput is None else workerinput.get(XDIST_EXPERIMENT)


@dataclass
class SessionState:
    """The session's resolved settings and where its results go."""

    config: pytest.Config
    settings: Settings
    experiment: str
    storage: Storage
    #: ``EvaluationReport`` of every evaluation run (or handed over by xdist workers).
    reports: list[Any] = field(default_factory=list)
    #: The response cache this session opened (``dotevals.cache.ResponseCache``), if any.
    cache: Any = None
    #: The price table (``dotevals.pricing.Prices``) loaded from ``--prices``, if any.
    prices: Any = None
    #: Where rows run (``--dotevals-runner``): a ``dotevals.runners`` runner; None: here.
    runner: Any = None

    @classmethod
    def from_config(
        cls, config: pytest.Config, settings: Settings, experiment: str | None = None
    ) -> SessionState:
        """Open the store; bad settings are usage errors naming the fix."""
        try:
            storage = open_storage(settings.storage)
        except DotevalsError as exc:
            raise pytest.UsageError(f"--dotevals-storage: {exc}") from exc
        experiment = experiment or settings.experiment or new_experiment_name()
        try:
            storage.check_experiment(experiment)
        except DotevalsError as exc:
            raise pytest.UsageError(f"--dotevals-experiment: {exc}") from None
        if settings.baseline is not None and not storage.has_experiment(settings.baseline):
            raise pytest.UsageError(
                f"--baseline: no experiment {settings.baseline!r} in {storage.url}; "
                f"stored: {', '.join(storage.list_experiments()) or 'none'}"
            )
        prices = _load_prices(settings.prices)
        return cls(config, settings, experiment, storage, prices=prices, runner=_runner(settings))

    def suspend_capture(self) -> Any:
        """A context in which output reaches the terminal despite pytest's capture."""
        capman = self.config.pluginmanager.getplugin("capturemanager")
        return capman.global_and_fixture_disabled()


def _load_prices(path: str | None) -> Any:
    """The ``--prices`` table, loaded once at start-up; a bad one is a usage error."""
    if path is None:
        return None
    from dotevals.pricing import load_prices

    try:
        return load_prices(path)
    except DotevalsError as exc:
        raise pytest.UsageError(f"--dotevals-prices: {exc}") from None


def _runner(settings: Settings) -> Any:
    """The session's runner; Ray actors are kept for every evaluation of the session."""
    if (settings.runner, settings.ray_workers, settings.ray_gpus) == ("local", None, None):
        return None  # nothing to import
    from dotevals.runners import make_runner

    try:
        return make_runner(
            settings.runner, settings.ray_workers, keep_actors=True, gpus=settings.ray_gpus
        )
    except DotevalsError as exc:
        raise pytest.UsageError(f"--dotevals-runner: {exc}") from None


STATE_KEY = pytest.StashKey[SessionState]()
