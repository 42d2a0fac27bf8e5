"""``@foreach`` and ``@batch``: attach an evaluation spec to a function; never execute it.

The decorated function keeps its fixture parameters (those that are not columns), so pytest
collects it and resolves its fixtures; the pytest plugin then hands the fixture values to the
engine. ``dotevals.run`` does the same without pytest.
"""

from __future__ import annotations

import functools
import inspect
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar

from dotevals.errors import ConfigurationError

__all__ = ["Batch", "EvaluationSpec", "ForEach", "batch", "foreach", "get_spec"]

F = TypeVar("F", bound=Callable[..., Any])

#: The attribute that carries an evaluation's spec on the decorated function.
SPEC_ATTR: Final = "__dotevals_spec__"
#: Where the pytest plugin puts the callable that runs an evaluation item (config.stash key).
RUNNER_ATTR: Final = "_dotevals_runner"

_OPTIONS: Final = frozenset(
    {"concurrency", "threads", "max_retries", "threshold", "samples", "name", "max_concurrency"}
)


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

    @property
    def threshold(self) -> Mapping[str, float]:
        """Minimum metric values (``{"accuracy": 0.8}``) below which the evaluation fails."""
        return self.options.get("threshold") or {}


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
    setattr(evaluation, SPEC_ATTR, spec)
    pytest = sys.modules.get("pytest")
    if pytest is not None:  # pytest-asyncio runs it, in strict mode too, on the default loop
        return pytest.mark.asyncio(evaluation)  # type: ignore[no-any-return]
    return evaluation


class ForEach:
    """``@foreach(columns, dataset, **options)``: evaluate a function on every row.

    A ``ForEach`` made with options (``ForEach(concurrency=...)``) applies them to every
    evaluation it decorates. ``foreach.NAME(split)`` uses the dataset registered as ``NAME`` in
    the ``dotevals.datasets`` entry-point group.
    """

    _batch_size: int | None = None

    def __init__(self, **options: Any) -> None:
        _check_options(options)
        self.options = options

    def __call__(
        self, columns: str | Iterable[str], dataset: Iterable[Any], **options: Any
    ) -> Callable[[F], F]:
        """Decorate an evaluation function."""
        _check_options(options)
        names = parse_columns(columns)
        merged = {**self.options, **options}

        def decorate(fn: F) -> F:
            spec = _make_spec(fn, names, dataset, self._batch_size, merged)
            return _collectable(spec)  # type: ignore[return-value]

        return decorate

    def __getattr__(self, name: str) -> Callable[..., Callable[[F], F]]:
        if name.startswith("_"):
            raise AttributeError(name)

        def from_registry(*args: Any, **kwargs: Any) -> Callable[[F], F]:
            from dotevals.datasets import load_dataset

            dataset = load_dataset(name, *args, **kwargs)
            return self(dataset.columns, dataset)

        return from_registry


class Batch(ForEach):
    """``@batch(columns, dataset, batch_size=N)``: the function gets lists of N rows' values.

    It returns a list of results (one per row) or one result used for every row of the batch;
    records are stored per row.
    """

    def __call__(
        self,
        columns: str | Iterable[str],
        dataset: Iterable[Any],
        batch_size: int = 8,
        **options: Any,
    ) -> Callable[[F], F]:
        """Decorate an evaluation function that takes batches."""
        if batch_size < 1:
            raise ConfigurationError(f"batch_size must be >= 1, got {batch_size!r}")
        clone = Batch(**self.options)
        clone._batch_size = batch_size
        return ForEach.__call__(clone, columns, dataset, **options)


foreach = ForEach()
batch = Batch()
