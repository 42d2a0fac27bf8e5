"""``@foreach`` and ``@batch``: attach an evaluation spec to a function; never execute it.

The decorated function keeps its fixture parameters (those that are not columns), so pytest
collects it and resolves its fixtures; the pytest plugin then hands the fixture values to the
engine. ``dotevals.run`` does the same without pytest.

The options of dotevals 0.26 / 0.28 are accepted as written there: ``retries=`` (a number of
retries, or a tenacity ``Retrying``/``AsyncRetrying`` whose ``stop_after_attempt`` sets
``max_retries``), ``concurrency=`` (any strategy of :mod:`dotevals.concurrency`, including
``SlidingWindow`` and the original ``Adaptive`` arguments) and ``storage=`` (accepted, not used:
results go where ``--storage`` says, and a warning says so). An option given as None keeps the
default, as it did there.
"""

from __future__ import annotations

import functools
import inspect
import sys
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Final, TypeVar

import tenacity

from dotevals._names import RUNNER_ATTR, SPEC_ATTR
from dotevals.errors import ConfigurationError

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "WHOLE_DATASET",
    "Batch",
    "EvaluationSpec",
    "ForEach",
    "batch",
    "foreach",
    "get_spec",
    "retries_to_max_retries",
]

F = TypeVar("F", bound=Callable[..., Any])


_OPTIONS: Final = frozenset(
    {
        "concurrency",
        "threads",
        "max_retries",
        "threshold",
        "samples",
        "name",
        "max_concurrency",
        "retries",
        "storage",
        "model",
        "cluster",
        "repeats",
    }
)
#: Rows per call of ``@batch`` when no ``batch_size`` is given.
DEFAULT_BATCH_SIZE: Final = 8
#: The batch size of ``batch_size=None``: every row in one call, as dotevals 0.26 did.
WHOLE_DATASET: Final = sys.maxsize


@dataclass
class EvaluationSpec:
    """What ``@foreach``/``@batch`` know about an evaluation."""

    fn: Callable[..., Any]
    columns: tuple[str, ...]
    dataset: Iterable[Any]
    name: str
    is_async: bool
    fixture_names: tuple[str, ...]
    batch_size: int | None = None
    options: dict[str, Any] = field(default_factory=dict)
    #: Whether a run opened ``dataset`` when it is a one-shot iterator (a generator): the
    #: engine refuses to read it again (parametrized items and repeated runs share the spec).
    dataset_opened: bool = field(default=False, init=False, compare=False, repr=False)

    @property
    def threshold(self) -> Mapping[str, float | Mapping[str, float]]:
        """Minimum metric values below which the evaluation fails: ``{"accuracy": 0.8}`` on
        the point estimate, ``{"accuracy": {"lower": 0.8}}`` on the interval's lower bound."""
        return self.options.get("threshold") or {}

    @property
    def cluster(self) -> str | None:
        """The column naming each row's cluster (``cluster="passage_id"``), or None."""
        return self.options.get("cluster")

    @property
    def repeats(self) -> int:
        """How many times each row runs (``repeats=K``; each run its own record)."""
        repeats: int = self.options.get("repeats", 1)
        return repeats


def parse_columns(columns: str | Iterable[str]) -> tuple[str, ...]:
    """``"a,b"`` or ``["a", "b"]`` as a tuple of stripped names."""
    parts = columns.split(",") if isinstance(columns, str) else list(columns)
    names = tuple(p.strip() for p in parts if p.strip())
    if not names:
        raise ConfigurationError(f"no column names in {columns!r}: give e.g. 'question,answer'")
    return names


def get_spec(fn: Any) -> EvaluationSpec | None:
    """The spec attached to a decorated function, or None."""
    return getattr(fn, SPEC_ATTR, None)


def _check_options(options: Mapping[str, Any]) -> None:
    unknown = set(options) - _OPTIONS
    if unknown:
        raise ConfigurationError(
            f"unknown option(s) {sorted(unknown)} for @foreach/@batch; known: {sorted(_OPTIONS)}"
        )


def _stop_attempts(stop: Any) -> int | None:
    """The most attempts a tenacity stop condition allows, when attempts bound it."""
    attempts = getattr(stop, "max_attempt_number", None)
    if isinstance(attempts, int):
        return attempts
    if not isinstance(stop, (tenacity.stop.stop_any, tenacity.stop.stop_all)):
        return None
    found = [_stop_attempts(s) for s in stop.stops]
    bounds = [n for n in found if n is not None]
    if isinstance(stop, tenacity.stop.stop_any):  # stops at the first condition met
        return min(bounds, default=None)
    return max(bounds) if bounds and len(bounds) == len(found) else None


def retries_to_max_retries(retries: Any) -> int | None:
    """``max_retries`` for dotevals 0.26's ``retries=`` option.

    Args:
        retries: a number of retries, or a tenacity ``Retrying``/``AsyncRetrying``. Of a tenacity
            object only the attempt bound of its ``stop`` (``stop_after_attempt(n)``, alone or
            combined with ``|``/``&``) is used: n attempts are n - 1 retries. Which errors are
            retried and how long to wait stay :mod:`dotevals.retry`'s rules.

    Returns:
        The number of retries, or None when the object bounds no attempts (the default holds).

    Raises:
        ConfigurationError: ``retries`` is neither a non-negative number nor a tenacity object.
    """
    if isinstance(retries, int) and not isinstance(retries, bool) and retries >= 0:
        return retries
    if isinstance(retries, tenacity.BaseRetrying):
        attempts = _stop_attempts(retries.stop)
        return None if attempts is None else max(0, attempts - 1)
    raise ConfigurationError(
        f"retries={retries!r}: give a number of retries or a tenacity Retrying/AsyncRetrying"
    )


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_threshold(threshold: Any) -> None:
    """Refuse a threshold that is not ``{metric: number}`` or ``{metric: {"lower": number}}``."""
    if threshold is None:
        return
    bad = (
        [repr(threshold)]
        if not isinstance(threshold, Mapping)
        else [
            f"{k!r}: {v!r}"
            for k, v in threshold.items()
            if not _is_number(v)
            and not (isinstance(v, Mapping) and set(v) == {"lower"} and _is_number(v["lower"]))
        ]
    )
    if bad:
        raise ConfigurationError(
            f"threshold {', '.join(bad)}: give {{metric: minimum}} for the point estimate or "
            '{metric: {"lower": minimum}} for the lower bound of its interval, '
            'e.g. threshold={"accuracy": {"lower": 0.7}}'
        )


def _normalize(options: Mapping[str, Any]) -> dict[str, Any]:
    """Checked options without None values; dotevals 0.26's ``retries``/``storage`` handled."""
    _check_options(options)
    kept = {k: v for k, v in options.items() if v is not None}
    _check_threshold(kept.get("threshold"))
    repeats = kept.get("repeats", 1)
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise ConfigurationError(f"repeats={repeats!r}: give how many times to run each row (>= 1)")
    cluster = kept.get("cluster")
    if cluster is not None and (not isinstance(cluster, str) or not cluster.strip()):
        raise ConfigurationError(
            f"cluster={cluster!r}: give the name of the column that labels each row's cluster, "
            "e.g. cluster='passage_id'"
        )
    if "retries" in kept:
        retries = retries_to_max_retries(kept["retries"])
        if retries is not None:
            kept.setdefault("max_retries", retries)
    if "storage" in kept:
        warnings.warn(
            f"storage={kept['storage']!r} is accepted for dotevals 0.26 files but not used: "
            "results go to --storage (default json://.dotevals)",
            UserWarning,
            stacklevel=3,
        )
    return kept


def _make_spec(
    fn: Callable[..., Any],
    columns: tuple[str, ...],
    dataset: Iterable[Any],
    batch_size: int | None,
    options: dict[str, Any],
) -> EvaluationSpec:
    params = inspect.signature(fn).parameters
    missing = [c for c in columns if c not in params]
    has_var_kw = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    if missing and not has_var_kw:
        raise ConfigurationError(
            f"{fn.__qualname__}() does not take column(s) {missing}: columns are "
            f"{list(columns)}, parameters are {list(params)}; add the parameters or fix the columns"
        )
    fixtures = tuple(n for n, p in params.items() if n not in columns and _is_fixture_param(p))
    return EvaluationSpec(
        fn=fn,
        columns=columns,
        dataset=dataset,
        name=options.get("name") or fn.__name__,
        is_async=inspect.iscoroutinefunction(fn),
        fixture_names=fixtures,
        batch_size=batch_size,
        options=options,
    )


def _is_fixture_param(param: inspect.Parameter) -> bool:
    return param.kind in (param.POSITIONAL_OR_KEYWORD, param.KEYWORD_ONLY) and (
        param.default is param.empty
    )


def _collectable(spec: EvaluationSpec) -> Callable[..., Any]:
    """A coroutine function pytest collects: its parameters are the fixtures (and ``request``).

    When pytest calls it, it hands the fixture values to the runner the plugin installed.
    """
    fn = spec.fn
    wants_request = "request" in spec.fixture_names

    @functools.wraps(fn)
    async def evaluation(**kwargs: Any) -> None:
        request = kwargs["request"] if wants_request else kwargs.pop("request", None)
        runner = getattr(getattr(request, "config", None), RUNNER_ATTR, None)
        if runner is None:
            raise ConfigurationError(
                f"{spec.name} is an evaluation: run it with pytest (dotevals plugin loaded) "
                "or with dotevals.run()"
            )
        await runner(request, spec, kwargs)

    names = spec.fixture_names if wants_request else (*spec.fixture_names, "request")
    evaluation.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY) for n in names]
    )
    del evaluation.__wrapped__  # pytest must see the signature above, not the columns
    setattr(evaluation, SPEC_ATTR, spec)  # the plugin collects it, marked, whatever its name
    return evaluation


class ForEach:
    """``@foreach(columns, dataset, **options)``: evaluate a function on every row.

    A ``ForEach`` made with options (``ForEach(concurrency=...)``) applies them to every
    evaluation it decorates; options given at the decoration win. ``foreach.NAME(split,
    **kwargs)`` uses the dataset registered as ``NAME`` (see :mod:`dotevals.datasets`).
    """

    _batch_size: int | None = None
    #: Whether ``__call__`` (and so ``NAME(split, ...)``) takes ``batch_size``: ``@batch``.
    _takes_batch_size: ClassVar[bool] = False

    def __init__(self, **options: Any) -> None:
        self.options = _normalize(options)

    @property
    def retries(self) -> Any:
        """The ``retries=`` option this instance was made with, or None."""
        return self.options.get("retries")

    @property
    def concurrency(self) -> Any:
        """The ``concurrency=`` option this instance was made with, or None."""
        return self.options.get("concurrency")

    def __call__(
        self, columns: str | Iterable[str], dataset: Iterable[Any], **options: Any
    ) -> Callable[[F], F]:
        """Decorate an evaluation function."""
        names = parse_columns(columns)
        merged = {**self.options, **_normalize(options)}

        def decorate(fn: F) -> F:
            spec = _make_spec(fn, names, dataset, self._batch_size, merged)
            return _collectable(spec)  # type: ignore[return-value]

        return decorate

    def __getattr__(self, name: str) -> Callable[..., Callable[[F], F]]:
        if name.startswith("_"):
            raise AttributeError(name)

        def from_registry(*args: Any, **kwargs: Any) -> Callable[[F], F]:
            return self._from_dataset(name, args, kwargs)

        from_registry.__name__ = name
        return from_registry

    def _from_dataset(
        self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Callable[[F], F]:
        """Decorate with the registered dataset ``name``; ``@batch`` takes ``batch_size`` too."""
        from dotevals.datasets import registered_dataset

        sizes: dict[str, Any] = {}
        if self._takes_batch_size:
            sizes["batch_size"] = kwargs.pop("batch_size", DEFAULT_BATCH_SIZE)
        dataset = registered_dataset(name, *args, **kwargs)  # built when first read
        return self(dataset.columns, dataset, **sizes)


class Batch(ForEach):
    """``@batch(columns, dataset, batch_size=N)``: the function gets lists of N rows' values.

    It returns a list of results (one per row) or one result used for every row of the batch;
    records are stored per row. ``batch_size=None`` puts every row in one call (what dotevals
    0.26 did when no size was given); with no ``batch_size`` at all, batches hold 8 rows.
    ``batch.NAME(split, batch_size=N)`` uses a registered dataset.
    """

    _takes_batch_size: ClassVar[bool] = True

    def __call__(
        self,
        columns: str | Iterable[str],
        dataset: Iterable[Any],
        batch_size: int | None = DEFAULT_BATCH_SIZE,
        **options: Any,
    ) -> Callable[[F], F]:
        """Decorate an evaluation function that takes batches."""
        size = WHOLE_DATASET if batch_size is None else batch_size
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ConfigurationError(f"batch_size must be >= 1 or None, got {batch_size!r}")
        clone = Batch()
        clone.options = dict(self.options)
        clone._batch_size = size
        return ForEach.__call__(clone, columns, dataset, **options)


foreach = ForEach()
batch = Batch()
