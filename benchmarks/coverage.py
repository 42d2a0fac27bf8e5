"""Coverage of our 95% intervals beside the naive Wald/CLT ones: ``python benchmarks/coverage.py``.

Simulated replicates (``--replicates``, 10 000 by default; ``--quick`` for 1 000) of:

* binary scores, n in 20, 100, 1000, true p on the grid 0.02, 0.04, ..., 0.98: Wilson
  (``dotevals.stats.wilson_interval``) against Wald ``p ± 1.96 sqrt(p(1-p)/n)``. Wilson's
  interval depends only on the count of successes, so it is computed once per count through
  the public API and looked up per replicate; ``proportion_interval`` on the replicates' own
  values is checked to give the same bounds;
* continuous scores in [0, 1], Beta(2, 2) (symmetric) and Beta(0.5, 4) (skewed): our
  skew-corrected t interval (``mean_interval``) against Student's t (``t_interval`` without
  skew) and the CLT interval ``mean ± 1.96 se``; and, at n = 20 on fewer replicates, the
  percentile bootstrap (``bootstrap_interval``), the alternative we did not choose for means;
* clustered binary scores (ICC 0.3, p = 0.5 and 0.8, 20 and 50 clusters of 10): the clustered
  Wilson interval (``proportion_interval(..., clusters=...)``) against Wald ignoring clusters;
* paired binary scores (per-item correlation 0.5, p_A = 0.70, p_B = 0.75, n in 20, 100, 1000):
  ``paired_difference`` (Agresti-Min) against the paired Wald interval ``d ± 1.96 sd/sqrt(n)``.

Targets: binary and continuous mean coverage within 1.5 points of 95% at every n and never
below 90% on the grid; clustered and paired coverage at least 93%.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np

from dotevals.stats import (
    Interval,
    bootstrap_interval,
    mean_interval,
    paired_difference,
    proportion_interval,
    t_interval,
    wilson_interval,
)

Z = 1.959963984540054
DISTRIBUTIONS = [("symmetric Beta(2,2)", (2.0, 2.0)), ("skewed Beta(0.5,4)", (0.5, 4.0))]
GRID = [round(0.02 * k, 2) for k in range(1, 50)]


def covers(interval: Interval, truth: float) -> bool:
    """Whether a defined interval holds the truth (an undefined one never does)."""
    return (
        interval.lo is not None and interval.hi is not None and interval.lo <= truth <= interval.hi
    )


def wald_covers(est: np.ndarray, se: np.ndarray, truth: float) -> np.ndarray:
    return np.abs(est - truth) <= Z * se


def binary(rng: np.random.Generator, reps: int) -> list[tuple[str, float, float, float, float]]:
    rows = []
    for n in (20, 100, 1000):
        table = [wilson_interval(x, n) for x in range(n + 1)]
        _check_shortcut(rng, n, table)
        ours, wald = [], []
        for p in GRID:
            x = rng.binomial(n, p, reps)
            hit = np.array([covers(t, p) for t in table])
            ours.append(hit[x].mean())
            ph = x / n
            wald.append(wald_covers(ph, np.sqrt(ph * (1 - ph) / n), p).mean())
        rows.append((f"binary n={n}", np.mean(ours), np.min(ours), np.mean(wald), np.min(wald)))
    return rows


def _check_shortcut(rng: np.random.Generator, n: int, table: list[Interval]) -> None:
    for _ in range(20):
        values = (rng.random(n) < rng.random()).tolist()
        direct = proportion_interval(values)
        looked_up = table[sum(values)]
        assert (direct.lo, direct.hi) == (looked_up.lo, looked_up.hi), "Wilson shortcut differs"


def continuous(rng: np.random.Generator, reps: int) -> list[tuple[str, float, float, float]]:
    rows = []
    for label, (a, b) in DISTRIBUTIONS:
        truth = a / (a + b)
        for n in (20, 100, 1000):
            data = rng.beta(a, b, (reps, n))
            ours = float(np.mean([covers(mean_interval(row), truth) for row in data.tolist()]))
            mean, var = data.mean(axis=1), data.var(axis=1, ddof=1)
            student = float(
                np.mean([covers(t_interval(m, v, n), truth) for m, v in zip(mean, var)])
            )
            wald = float(wald_covers(mean, np.sqrt(var / n), truth).mean())
            rows.append((f"{label} n={n}", ours, student, wald))
    return rows


def bootstrap_small_n(rng: np.random.Generator, reps: int) -> list[tuple[str, float, float, float]]:
    rows = []
    for label, (a, b) in DISTRIBUTIONS:
        truth = a / (a + b)
        data = rng.beta(a, b, (reps, 20)).tolist()
        ours = [covers(mean_interval(row), truth) for row in data]
        student = [
            covers(t_interval(statistics.fmean(r), statistics.variance(r), 20), truth) for r in data
        ]
        boot = [covers(bootstrap_interval(r, statistics.fmean, resamples=500), truth) for r in data]
        rows.append(
            (f"{label} n=20", float(np.mean(ours)), float(np.mean(student)), float(np.mean(boot)))
        )
    return rows


def clustered(rng: np.random.Generator, reps: int) -> list[tuple[str, float, float, float, float]]:
    rows, icc, size = [], 0.3, 10
    for p in (0.5, 0.8):
        for g in (20, 50):
            scale = (1 - icc) / icc
            labels = np.repeat(np.arange(g), size).tolist()
            ours, wald = [], []
            for _ in range(reps):
                pg = rng.beta(p * scale, (1 - p) * scale, g)
                values = (rng.random((g, size)) < pg[:, None]).ravel()
                ours.append(covers(proportion_interval(values.tolist(), clusters=labels), p))
                ph = values.mean()
                wald.append(abs(ph - p) <= Z * np.sqrt(ph * (1 - ph) / values.size))
            name = f"clustered p={p} {g}x{size}"
            rows.append((name, np.mean(ours), np.mean(ours), np.mean(wald), np.mean(wald)))
    return rows


def paired(rng: np.random.Generator, reps: int) -> list[tuple[str, float, float, float, float]]:
    rows, p_a, p_b, rho = [], 0.70, 0.75, 0.5
    both = p_a * p_b + rho * np.sqrt(p_a * (1 - p_a) * p_b * (1 - p_b))
    cells = [both, p_a - both, p_b - both, 1 - p_a - p_b + both]  # 11, 10, 01, 00
    truth = p_b - p_a
    for n in (20, 100, 1000):
        ours, wald = [], []
        for counts in rng.multinomial(n, cells, reps):
            a, b = _pairs(counts)
            ours.append(covers(paired_difference(a, b).diff, truth))
            d = np.array(b, dtype=float) - np.array(a, dtype=float)
            wald.append(abs(d.mean() - truth) <= Z * d.std(ddof=1) / np.sqrt(n))
        rows.append((f"paired n={n}", np.mean(ours), np.mean(ours), np.mean(wald), np.mean(wald)))
    return rows


def _pairs(counts: Sequence[int]) -> tuple[list[bool], list[bool]]:
    n11, n10, n01, n00 = (int(c) for c in counts)
    a = [True] * (n11 + n10) + [False] * (n01 + n00)
    b = [True] * n11 + [False] * n10 + [True] * n01 + [False] * n00
    return a, b


def table(title: str, rows: list[tuple[Any, ...]], header: Sequence[str]) -> None:
    print(f"\n{title}\n")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for name, *figures in rows:
        print(f"| {name} | " + " | ".join(f"{100 * f:.1f}%" for f in figures) + " |")


def misses(rows: list[tuple[Any, ...]], kind: str) -> list[str]:
    """The targets a section's rows miss: ``(name, ours mean, ours min, ...)``."""
    out = []
    for name, mean, low, *_ in rows:
        if kind == "mean" and (abs(mean - 0.95) > 0.015 or low < 0.90):
            out.append(f"{name}: mean {100 * mean:.1f}%, min {100 * low:.1f}%")
        if kind == "floor" and low < 0.93:
            out.append(f"{name}: {100 * low:.1f}% < 93%")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicates", type=int, default=10_000)
    parser.add_argument("--quick", action="store_true", help="1 000 replicates")
    parser.add_argument("--seed", type=int, default=2024)
    args = parser.parse_args(argv)
    reps = 1_000 if args.quick else args.replicates
    rng = np.random.default_rng(args.seed)
    print(f"coverage of nominal 95% intervals, {reps} replicates each")
    header = ["data", "ours mean", "ours min", "naive mean", "naive min"]
    missed: list[str] = []
    rows = binary(rng, reps)
    table("Binary scores (mean / min over p = 0.02 ... 0.98)", rows, header)
    missed += misses(rows, "mean")
    rows = continuous(rng, reps)
    table("Continuous scores in [0, 1]", rows, ["data", "ours", "Student-t", "naive CLT"])
    missed += misses([(name, ours, ours) for name, ours, *_ in rows], "mean")
    for title, make in [
        ("Clustered binary scores, ICC 0.3", clustered),
        ("Paired binary scores, correlation 0.5, B - A = 0.05", paired),
    ]:
        rows = make(rng, reps)
        table(title, rows, header)
        missed += misses(rows, "floor")
    small = max(reps // 10, 200)
    table(
        f"Means at n=20: the alternatives ({small} replicates)",
        bootstrap_small_n(rng, small),
        ["data", "ours", "Student-t", "bootstrap (500 resamples)"],
    )
    print("\ntargets: " + ("all met" if not missed else "MISSED: " + "; ".join(missed)))
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
