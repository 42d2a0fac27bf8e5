"""Evaluators: functions that score one model output and return a :class:`Score`.

An evaluator is a plain function returning a value, decorated with :func:`evaluator`::

    @evaluator(metrics=accuracy())
    def starts_with(result: str, prefix: str) -> bool:
        return result.startswith(prefix)

    starts_with("hello", "he")  # Score(name="starts_with", value=True, ...)
    starts_with("hello", "he", name="prefix")  # the same score, named "prefix"

The score's metadata holds the call's arguments by parameter name, defaults included.
"""

from __future__ import annotations

import ast
import functools
import inspect
import json
import math
import numbers
import re
import textwrap
from collections.abc import Callable, Sequence
from typing import Any, ParamSpec

import jsonschema

from dotevals.metrics import Metric, accuracy
from dotevals.results import Score

__all__ = [
    "ast_evaluation",
    "contains",
    "evaluator",
    "exact_match",
    "numeric_match",
    "regex_match",
    "valid_json",
]

P = ParamSpec("P")

#: Thousands separators (a comma or any whitespace) between two digits.
_SEPARATOR = re.compile(r"(?<=[0-9])[,\s](?=[0-9])")
_INTEGER = re.compile(r"[+-]?[0-9]+")
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_TOLERANCE = 1e-9
#: Longer integer strings are read as floats (Python limits str-to-int conversion).
_MAX_INT_DIGITS = 4000


def evaluator(
    metrics: Metric | Sequence[Metric],
) -> Callable[[Callable[P, Any]], Callable[P, Score]]:
    """Turn a function returning a value into an evaluator returning a :class:`Score`.

    Calling the evaluator calls the function and wraps its value in a score named after the
    function, carrying ``metrics`` and, as metadata, the call's arguments bound to parameter
    names (defaults applied). A ``name=`` keyword at the call renames the score; it is neither
    passed to the function nor stored in the metadata (unless the function itself has a
    parameter called ``name``, which then receives it as usual).

    Args:
        metrics: a metric, or a sequence of metrics, aggregating the score over all rows.

    Returns:
        A decorator making evaluators.
    """
    metric_list = [metrics] if callable(metrics) else list(metrics)

    def decorate(func: Callable[P, Any]) -> Callable[P, Score]:
        signature = inspect.signature(func)
        takes_name = "name" in signature.parameters
        arguments = _Arguments(signature)

        @functools.wraps(func)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> Score:
            score_name = func.__name__
            if not takes_name and "name" in kwargs:
                given = kwargs.pop("name")
                if given is not None:  # name=None: the default name
                    score_name = str(given)
            metadata = arguments.bind(args, kwargs)
            value = func(*args, **kwargs)
            return Score(score_name, value, list(metric_list), metadata)

        return wrapper

    return decorate


class _Arguments:
    """Binds a call's arguments to parameter names, defaults applied, as ``Signature.bind``.

    For a function whose parameters are all plain (positional or keyword, no ``*args``,
    ``**kwargs``, keyword- or positional-only) the names are matched directly; anything
    else, and any call that does not fit (a missing or unexpected argument), goes through
    ``Signature.bind``, which also raises its usual ``TypeError``.
    """

    def __init__(self, signature: inspect.Signature) -> None:
        params = list(signature.parameters.values())
        self._signature = signature
        self._plain = all(p.kind is p.POSITIONAL_OR_KEYWORD for p in params)
        self._names = tuple(p.name for p in params)
        self._defaults = {p.name: p.default for p in params if p.default is not p.empty}

    def bind(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        """The arguments by parameter name, in parameter order."""
        names = self._names
        if self._plain and len(args) <= len(names):
            bound = dict(zip(names, args))
            if len(args) == len(names) and not kwargs:
                return bound
            if self._bind_rest(bound, names[len(args) :], kwargs):
                return bound
        full = self._signature.bind(*args, **kwargs)
        full.apply_defaults()
        return dict(full.arguments)

    def _bind_rest(self, bound: dict[str, Any], rest: tuple[str, ...], kwargs: Any) -> bool:
        """Fill ``rest`` from keywords and defaults; False when the call does not fit."""
        used = 0
        for name in rest:
            if name in kwargs:
                bound[name] = kwargs[name]
                used += 1
            elif name in self._defaults:
                bound[name] = self._defaults[name]
            else:
                return False
        return used == len(kwargs)


@evaluator(metrics=accuracy())
def exact_match(result: Any, expected: Any) -> bool:
    """Whether the result equals the expected value (``==``, strings compared as they are).

    Args:
        result: the model's output.
        expected: the reference value.

    Returns:
        A score whose value is ``result == expected``.
    """
    return bool(result == expected)


def _to_number(value: Any) -> int | float | None:
    """The number ``value`` holds, or None when it holds none."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if not isinstance(value, str):
        return None
    text = _SEPARATOR.sub("", value.strip())
    if _DECIMAL.fullmatch(text) is None:
        return None
    if _INTEGER.fullmatch(text) is not None and len(text) <= _MAX_INT_DIGITS:
        return int(text)
    return float(text)


def _numbers_equal(a: int | float, b: int | float) -> bool:
    """Exact equality of integers, else closeness within a relative and absolute 1e-9."""
    if isinstance(a, int) and isinstance(b, int):
        return a == b
    try:
        return math.isclose(a, b, rel_tol=_TOLERANCE, abs_tol=_TOLERANCE)
    except OverflowError:  # an integer too large for a float
        return False


@evaluator(metrics=accuracy())
def numeric_match(result: Any, expected: Any) -> bool:
    """Whether the result and the expected value are the same number.

    Strings are stripped of surrounding whitespace and of thousands separators (commas or
    spaces between digits: ``"1,234"``, ``"1 234"``), and may use scientific notation
    (``"1e3"``). Ints and floats are taken as they are; booleans are not numbers.

    Args:
        result: the model's output: a number or a string holding one.
        expected: the reference number, or a string holding one.

    Returns:
        A score that is False when either side is None, empty or not a number.
    """
    a, b = _to_number(result), _to_number(expected)
    if a is None or b is None:
        return False
    return _numbers_equal(a, b)


def _reject_constant(token: str) -> Any:
    """Refuse ``NaN`` and ``Infinity``, which Python's parser accepts but JSON does not."""
    raise ValueError(f"{token} is not valid JSON")


def _parse_json(result: Any) -> tuple[bool, Any]:
    """``(True, data)`` when ``result`` is a JSON string or an already parsed dict or list."""
    if isinstance(result, (dict, list)):
        return True, result
    if not isinstance(result, str):
        return False, None
    try:
        return True, json.loads(result, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        return False, None


@evaluator(metrics=accuracy())
def valid_json(result: Any, schema: dict[str, Any] | None = None) -> bool:
    """Whether the result is valid JSON, conforming to ``schema`` when one is given.

    Args:
        result: a JSON string, or a dict or list taken as already parsed JSON.
        schema: a JSON Schema the parsed value must satisfy.

    Returns:
        A score that is False for None, invalid JSON, a value failing the schema, or an
        invalid schema.
    """
    parsed, data = _parse_json(result)
    if not parsed:
        return False
    if schema is None:
        return True
    validator = _validator_for(schema)
    return validator is not None and validator.is_valid(data)


def _validator_for(schema: Any) -> Any:
    """A validator of ``schema``, built once per distinct schema; None when it is invalid."""
    try:
        key = json.dumps(schema, sort_keys=True)
    except (TypeError, ValueError):  # not JSON (e.g. a set inside): build it each time
        return _build_validator(schema)
    return _cached_validator(key)


@functools.lru_cache(maxsize=64)
def _cached_validator(key: str) -> Any:
    return _build_validator(json.loads(key))


def _build_validator(schema: Any) -> Any:
    cls = jsonschema.validators.validator_for(schema)
    try:
        cls.check_schema(schema)
    except jsonschema.SchemaError:
        return None
    return cls(schema)


def _ast_dump(source: Any) -> str | None:
    """The dumped AST of Python source, or None when it is not parseable source."""
    if not isinstance(source, str):
        return None
    try:
        return ast.dump(ast.parse(textwrap.dedent(source)))
    except (SyntaxError, ValueError, RecursionError):
        return None


@evaluator(metrics=accuracy())
def ast_evaluation(result: Any, expected: Any) -> bool:
    """Whether two pieces of Python code have the same syntax tree.

    Formatting, comments and redundant parentheses do not matter; names and values do.

    Args:
        result: the model's Python code or expression.
        expected: the reference code or expression.

    Returns:
        A score that is False when either side is None or fails to parse.
    """
    dumped = _ast_dump(result)
    return dumped is not None and dumped == _ast_dump(expected)


def _text(value: Any) -> str | None:
    """A value as text: None stays None, other non-strings go through ``str``."""
    if value is None or isinstance(value, str):
        return value
    return str(value)


@evaluator(metrics=accuracy())
def contains(result: Any, expected: Any, case_sensitive: bool = True) -> bool:
    """Whether the expected text occurs in the result.

    Args:
        result: the model's output.
        expected: the text to look for.
        case_sensitive: whether case matters (compared by case folding when it does not).

    Returns:
        A score that is False when either side is None.
    """
    haystack, needle = _text(result), _text(expected)
    if haystack is None or needle is None:
        return False
    if not case_sensitive:
        haystack, needle = haystack.casefold(), needle.casefold()
    return needle in haystack


@evaluator(metrics=accuracy())
def regex_match(result: Any, pattern: str | re.Pattern[str], flags: int = 0) -> bool:
    """Whether the pattern matches somewhere in the result (``re.search``).

    Args:
        result: the model's output.
        pattern: a regular expression, as text or compiled.
        flags: ``re`` flags for a pattern given as text.

    Returns:
        A score that is False when the result is None.

    Raises:
        ValueError: the pattern is not a valid regular expression.
    """
    try:
        compiled = re.compile(pattern, flags)
    except re.error as exc:
        raise ValueError(f"invalid regular expression {pattern!r}: {exc}") from exc
    text = _text(result)
    return text is not None and compiled.search(text) is not None
