"""What installing dotevals costs a pytest session that collects no evaluation.

``python benchmarks/startup.py [--runs N]``: a one-test suite run N times with the plugin and
N times with ``-p no:dotevals`` (interleaved, so machine noise hits both alike), the medians
and their difference (target: within 50 ms); then ``python -X importtime`` of the plugin
module and of a whole session, listing the dotevals modules a plain session imports.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ONE_TEST = "def test_one():\n    assert True\n"
BASE = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_one.py"]


def _time(args: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(args, cwd=cwd, check=True, capture_output=True)
    return time.perf_counter() - start


def _importtime(args: list[str], cwd: Path) -> dict[str, int]:
    """Cumulative import time (µs) of each dotevals module the command imports."""
    out = subprocess.run(
        [sys.executable, "-X", "importtime", *args], cwd=cwd, capture_output=True, text=True
    ).stderr
    found: dict[str, int] = {}
    for line in out.splitlines():
        parts = [part.strip() for part in line.removeprefix("import time:").split("|")]
        if len(parts) == 3 and parts[2].startswith("dotevals"):
            found[parts[2]] = int(parts[1])
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=15)
    runs = parser.parse_args().runs
    with tempfile.TemporaryDirectory() as tmp:
        cwd = Path(tmp)
        (cwd / "test_one.py").write_text(ONE_TEST)
        _time(BASE, cwd)  # warm the file system caches for both
        with_us, without = [], []
        for _ in range(runs):
            with_us.append(_time(BASE, cwd))
            without.append(_time([*BASE, "-p", "no:dotevals"], cwd))
        a, b = statistics.median(with_us), statistics.median(without)
        print(f"one-test suite, median of {runs}: with dotevals {a * 1000:.0f} ms,")
        print(f"  with -p no:dotevals {b * 1000:.0f} ms: difference {(a - b) * 1000:+.0f} ms")
        print(f"  ratio {a / b:.3f}x (target: within 50 ms)")
        plugin = _importtime(["-c", "import dotevals.pytest_plugin"], cwd)
        own = plugin.get("dotevals.pytest_plugin", 0) / 1000
        print(f"import dotevals.pytest_plugin: {own:.1f} ms (pytest itself included)")
        session = _importtime(["-m", "pytest", "-q", "-p", "no:cacheprovider", "test_one.py"], cwd)
        top = sorted(session.items(), key=lambda kv: -kv[1])[:8]
        print("dotevals modules a plain session imports (cumulative ms):")
        for name, micros in top:
            print(f"  {name:45} {micros / 1000:6.1f}")
        heavy = [m for m in ("dotevals._engine", "dotevals.api", "dotevals.cache") if m in session]
        print(f"engine modules imported: {heavy or 'none'}")


if __name__ == "__main__":
    main()
