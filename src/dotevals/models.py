"""``dotevals.models``: where dotevals 0.26 kept ``Result`` and ``Score``.

Evaluation files written for it import from here (``from dotevals.models import Result``); the
names are those of :mod:`dotevals.results`, the same classes.
"""

from __future__ import annotations

from dotevals.results import ErrorInfo, MetricValue, Record, Result, Score

__all__ = ["ErrorInfo", "MetricValue", "Record", "Result", "Score"]
