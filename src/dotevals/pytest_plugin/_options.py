"""The plugin's options: one table, three spellings, one frozen :class:`Settings`.

Every option has a namespaced long form (``--dotevals-storage``) and an ini key
(``dotevals_storage``, in ``[tool.pytest.ini_options]`` or ``pytest.ini``); the command line
wins over the ini file. The short forms that scripts written for dotevals 0.26 / 0.28 use
(``--experiment``, ``--samples``, ``--storage``, ``--concurrent``, ``--model``, ...) are
registered only after the initial conftests and every plugin have added theirs
(:func:`add_short_aliases`), and only where nobody else took the name: a conftest's own
``--model`` wins, and ours stays reachable as ``--dotevals-model``.

Nothing here imports the engine: option registration is what every pytest session pays for.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import pytest

from dotevals._converters import checked
from dotevals._pytest_internals import taken_option_names

__all__ = ["OPTIONS", "Settings", "add_options", "add_short_aliases"]

_GROUP: Final = "dotevals"
#: Where results go when neither ``--dotevals-storage`` nor ``dotevals_storage`` is given
#: (``dotevals.storage.DEFAULT_STORAGE``; a test keeps the two equal).
DEFAULT_STORAGE: Final = "json://.dotevals"
#: The cache file of ``--dotevals-cache`` when no path is given.
DEFAULT_CACHE_PATH: Final = ".dotevals/cache.sqlite"
#: ``dotevals.runners.RUNNERS`` (a test keeps the two equal).
RUNNERS: Final = ("local", "ray")
#: ``concurrency.DEFAULT_MAX_CONCURRENCY`` (a test keeps the two equal).
DEFAULT_MAX_CONCURRENCY: Final = 256


_positive = checked("_positive", int, lambda number: number >= 1)
_non_negative = checked("_non_negative", int, lambda number: number >= 0)
_seconds = checked("_seconds", float, lambda number: number >= 0)  # NaN is not
_alpha = checked("_alpha", float, lambda number: 0 < number < 0.5)
_runner_name = checked("_runner_name", lambda value: value.strip().lower(), RUNNERS.__contains__)


@dataclass(frozen=True)
class Option:
    """One setting: ``--dotevals-NAME``, ini ``dotevals_NAME`` (``-`` read as ``_``).

    Attributes:
        name: the long form without ``--dotevals-``.
        help: what it does (shown by ``pytest --help``).
        short: the 0.26-style spelling kept for old scripts, registered where it is free.
        kind: ``value`` (a string or ``convert``-ed value), ``flag`` or ``append``.
        convert: parses a command-line or ini string; raise ValueError on bad input.
        metavar: the placeholder in ``--help``.
    """

    name: str
    help: str
    short: str | None = None
    kind: str = "value"
    convert: Callable[[str], Any] = str
    metavar: str | None = None

    @property
    def long(self) -> str:
        return f"--dotevals-{self.name}"

    @property
    def dest(self) -> str:
        return "dotevals_" + self.name.replace("-", "_")

    def argparse_kwargs(self) -> dict[str, Any]:
        """What ``addoption`` takes for this option (both spellings share the ``dest``)."""
        kwargs: dict[str, Any] = {"dest": self.dest, "default": None, "help": self.help}
        if self.kind == "flag":
            kwargs["action"] = "store_true"
        elif self.kind == "append":
            kwargs.update(action="append", metavar=self.metavar)
        else:
            kwargs.update(type=self.convert, metavar=self.metavar)
        return kwargs

    def ini_type(self) -> str:
        return {"flag": "bool", "append": "linelist"}.get(self.kind, "string")


OPTIONS: Final = (
    Option(
        "experiment",
        "experiment to store results under; re-running it resumes (default: a new name)",
        short="--experiment",
        metavar="NAME",
    ),
    Option(
        "samples",
        "evaluate only the first N rows",
        short="--samples",
        convert=_positive,
        metavar="N",
    ),
    Option(
        "storage",
        f"where results go, json://DIR or sqlite://FILE (default {DEFAULT_STORAGE})",
        short="--storage",
        metavar="URL",
    ),
    Option(
        "model",
        "evaluate with this model (repeatable): evaluations taking the `model` fixture run "
        "once per model, e.g. --model openai:gpt-4o-mini",
        short="--model",
        kind="append",
        metavar="PROVIDER:SPEC",
    ),
    Option(
        "max-concurrency",
        f"most rows in flight per async evaluation (default {DEFAULT_MAX_CONCURRENCY})",
        short="--max-concurrency",
        convert=_positive,
        metavar="N",
    ),
    Option(
        "concurrency",
        "'adaptive' (default for async), 'sequential', or a fixed number of rows in flight",
        short="--concurrency",
        metavar="STRATEGY",
    ),
    Option(
        "concurrent",
        "accepted for scripts written for dotevals 0.26; async evaluations always run "
        "concurrently here",
        short="--concurrent",
        kind="flag",
    ),
    Option(
        "max-retries",
        "retries of transient errors per row (default 5)",
        short="--max-retries",
        convert=_non_negative,
        metavar="N",
    ),
    Option(
        "cache",
        f"answer repeated model requests from a local cache ({DEFAULT_CACHE_PATH})",
        short="--cache",
        kind="flag",
    ),
    Option(
        "prices",
        "a TOML price table (or 'genai-prices') that turns token usage into cost",
        short="--prices",
        metavar="FILE",
    ),
    Option(
        "cache-path",
        "the response cache's SQLite file (turns the cache on)",
        metavar="PATH",
    ),
    Option(
        "baseline",
        "fail an evaluation whose scores are significantly below this stored experiment's on "
        "the same items (one-sided paired test); a drop within noise passes",
        short="--baseline",
        metavar="EXPERIMENT",
    ),
    Option(
        "baseline-alpha",
        "significance level of the --baseline test, between 0 and 0.5 (default 0.05)",
        convert=_alpha,
        metavar="ALPHA",
    ),
    Option(
        "lock-timeout",
        "wait this long for another process running the same evaluation of the experiment "
        "(default 0: stop at once, naming it)",
        short="--lock-timeout",
        convert=_seconds,
        metavar="SECONDS",
    ),
    Option(
        "runner",
        "where rows run: 'local' (this process, default) or 'ray' (sharded over Ray actors; "
        'RAY_ADDRESS joins a cluster; pip install "dotevals[ray]")',
        convert=_runner_name,
        metavar="NAME",
    ),
    Option(
        "ray-workers",
        "Ray actors per evaluation with --dotevals-runner ray (default 2)",
        short="--ray-workers",
        convert=_positive,
        metavar="N",
    ),
    Option(
        "ray-gpus",
        "GPUs each Ray actor reserves and sees (for a model server it starts, e.g. vllm)",
        short="--ray-gpus",
        convert=_seconds,
        metavar="N",
    ),
    Option(
        "report",
        "write an HTML report of the session's experiments to PATH at the end (an ini "
        "value is read from the ini file's folder)",
        metavar="PATH",
    ),
)


def add_options(parser: pytest.Parser) -> None:
    """Register every ``--dotevals-*`` option and ``dotevals_*`` ini key."""
    group = parser.getgroup(_GROUP, "dotevals evaluations")
    for option in OPTIONS:
        group.addoption(option.long, **option.argparse_kwargs())
        parser.addini(option.dest, option.help, type=option.ini_type())  # type: ignore[arg-type]


def add_short_aliases(parser: pytest.Parser) -> list[str]:
    """Register the short spellings nobody else registered; returns the ones left out."""
    taken = taken_option_names(parser)
    group = parser.getgroup(_GROUP)
    skipped = []
    for option in OPTIONS:
        if option.short is None:
            continue
        if option.short in taken:
            skipped.append(option.short)
            continue
        kwargs = option.argparse_kwargs()
        kwargs["help"] = f"same as {option.long}"
        group.addoption(option.short, **kwargs)
    return skipped


def _ini_value(config: pytest.Config, option: Option) -> Any:
    """The ini file's value, converted; None when the key is not set."""
    raw = config.getini(option.dest)
    if option.kind == "flag":
        return bool(raw) or None
    if option.kind == "append":
        return list(raw) or None
    if not raw:
        return None
    try:
        return option.convert(str(raw).strip())
    except ValueError:
        raise pytest.UsageError(
            f"ini option {option.dest} = {raw!r} is not valid: {option.help}"
        ) from None


def _value(config: pytest.Config, option: Option) -> Any:
    given = config.getoption(option.dest, None)
    return _ini_value(config, option) if given is None else given


def _check_concurrency(value: str | None) -> None:
    """A ``concurrency`` value must name a strategy, before any evaluation runs."""
    if value is None:
        return
    from dotevals.concurrency import resolve_strategy
    from dotevals.errors import ConfigurationError

    try:
        resolve_strategy(value, is_async=True)
    except ConfigurationError as exc:
        raise pytest.UsageError(f"--concurrency/--dotevals-concurrency: {exc}") from None


@dataclass(frozen=True)
class Settings:
    """The session's dotevals settings, resolved once: command line, then ini, then default."""

    experiment: str | None = None
    samples: int | None = None
    storage: str = DEFAULT_STORAGE
    models: tuple[str, ...] = ()
    max_concurrency: int = DEFAULT_MAX_CONCURRENCY
    concurrency: str | None = None
    max_retries: int | None = None
    #: The response cache's file, or None when the cache is off.
    cache_path: str | None = None
    #: The price table's path (or ``genai-prices``), or None: usage without cost.
    prices: str | None = None
    #: The experiment ``--baseline`` gates against, and the one-sided test's alpha.
    baseline: str | None = None
    baseline_alpha: float = 0.05
    lock_timeout: float = 0.0
    runner: str = "local"
    ray_workers: int | None = None
    ray_gpus: float | None = None
    #: Where the session's HTML report goes (as given), or None for no report.
    report: str | None = None

    @classmethod
    def from_config(cls, config: pytest.Config) -> Settings:
        """Read every option; a bad value is a usage error naming it."""
        values = {option.dest: _value(config, option) for option in OPTIONS}
        _check_concurrency(values["dotevals_concurrency"])
        cache_path = values["dotevals_cache_path"] or (
            DEFAULT_CACHE_PATH if values["dotevals_cache"] else None
        )
        return cls(
            experiment=values["dotevals_experiment"],
            samples=values["dotevals_samples"],
            storage=values["dotevals_storage"] or DEFAULT_STORAGE,
            models=tuple(dict.fromkeys(values["dotevals_model"] or ())),
            max_concurrency=values["dotevals_max_concurrency"] or DEFAULT_MAX_CONCURRENCY,
            concurrency=values["dotevals_concurrency"],
            max_retries=values["dotevals_max_retries"],
            cache_path=cache_path,
            prices=values["dotevals_prices"],
            baseline=values["dotevals_baseline"],
            baseline_alpha=values["dotevals_baseline_alpha"] or 0.05,
            lock_timeout=values["dotevals_lock_timeout"] or 0.0,
            runner=values["dotevals_runner"] or "local",
            ray_workers=values["dotevals_ray_workers"],
            ray_gpus=values["dotevals_ray_gpus"],
            report=values["dotevals_report"],
        )
