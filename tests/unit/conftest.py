"""Fixtures shared by the unit tests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from dotevals import metrics as metrics_module


@pytest.fixture
def registry() -> Iterator[dict[str, Any]]:
    """Restore the metric registry after a test registers metrics."""
    saved = dict(metrics_module._FACTORIES)
    yield metrics_module._FACTORIES
    metrics_module._FACTORIES.clear()
    metrics_module._FACTORIES.update(saved)
