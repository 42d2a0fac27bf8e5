"""Command-line options of the dotevals pytest plugin."""

from __future__ import annotations

import argparse

import pytest

from dotevals.concurrency import DEFAULT_MAX_CONCURRENCY, resolve_strategy
from dotevals.errors import ConfigurationError
from dotevals.storage import DEFAULT_STORAGE

__all__ = ["add_options"]


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise ValueError(value)
    return number


def _concurrency(value: str) -> str:
    """A ``--concurrency`` value that names a strategy, checked before any evaluation runs."""
    try:
        resolve_strategy(value, is_async=True)
    except ConfigurationError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc
    return value


def add_options(parser: pytest.Parser) -> None:
    """Register ``--experiment``, ``--samples``, ``--storage`` and the speed options."""
    group = parser.getgroup("dotevals", "dotevals evaluations")
    group.addoption(
        "--experiment",
        help="experiment to store results under; re-running it resumes (default: a new name)",
    )
    group.addoption("--samples", type=_positive, help="evaluate only the first N rows")
    group.addoption(
        "--storage", default=DEFAULT_STORAGE, help=f"where results go (default {DEFAULT_STORAGE})"
    )
    group.addoption(
        "--max-concurrency",
        type=_positive,
        default=DEFAULT_MAX_CONCURRENCY,
        help=f"most rows in flight per async evaluation (default {DEFAULT_MAX_CONCURRENCY})",
    )
    group.addoption(
        "--concurrency",
        type=_concurrency,
        help="'adaptive' (default for async), 'sequential', or a fixed number of rows in flight",
    )
    group.addoption(
        "--concurrent",
        action="store_true",
        help="accepted for scripts written for dotevals 0.26; async evaluations always run "
        "concurrently here",
    )
    group.addoption(
        "--max-retries", type=int, default=None, help="retries of transient errors per row"
    )
    group.addoption(
        "--cache",
        nargs="?",
        const=".dotevals/cache.sqlite",
        default=None,
        help="answer repeated model requests from a local cache (optional path)",
    )
