"""Every benchmark, one after another: ``python benchmarks/all.py [--quick]``.

Each script prints its own figures as ratios to baselines it measures in the same run; this
runs them in fresh processes (so one's memory peak does not colour the next) and ends with a
line per script saying whether it finished. ``--quick`` passes ``--quick`` to ``run.py`` and
smaller sizes to the others.
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent


def _scripts(quick: bool) -> list[list[str]]:
    scripts = [
        ["run.py", *(["--quick"] if quick else [])],
        ["startup.py", *(["--runs", "5"] if quick else [])],
        ["coverage.py", *(["--quick"] if quick else [])],
        ["datasets_bench.py", *(["--rows", "100000"] if quick else [])],
        ["report.py", *(["--rows", "2000"] if quick else [])],
    ]
    if importlib.util.find_spec("ray") is not None:
        scripts.append(["ray_bench.py", *(["--quick"] if quick else [])])
    return scripts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    quick = parser.parse_args().quick
    outcomes = []
    for script, *args in _scripts(quick):
        print(f"\n=== benchmarks/{script} {' '.join(args)}", flush=True)
        code = subprocess.call([sys.executable, str(HERE / script), *args])
        outcomes.append((script, code))
    print()
    for script, code in outcomes:
        print(f"{script:20} {'ok' if code == 0 else f'exit {code}'}")
    sys.exit(max(code for _, code in outcomes))


if __name__ == "__main__":
    main()
