"""Reference intervals computed with scipy, independently of dotevals.stats."""

from __future__ import annotations

import numpy as np
from scipy import optimize
from scipy import stats as sp


def hall_t(values: list[float], level: float = 0.95) -> tuple[float, float]:
    """Hall's (1992) skew-corrected t interval, its transformation solved numerically."""
    x = np.asarray(values, dtype=float)
    n, mean, se, skew = len(x), x.mean(), sp.sem(x), sp.skew(x)
    a, b = skew / (3 * np.sqrt(n)), skew / (6 * np.sqrt(n))
    q = sp.t.ppf(0.5 + level / 2, n - 1)

    def g(t: float, target: float) -> float:
        return float(t + a * t * t + a * a * t**3 / 3 + b - target)

    t_high = optimize.brentq(g, -1e3, 1e3, args=(q,), xtol=1e-14)
    t_low = optimize.brentq(g, -1e3, 1e3, args=(-q,), xtol=1e-14)
    return float(mean - t_high * se), float(mean - t_low * se)
