"""``dotevals demo`` end to end: local server, pytest, stored results, nothing left running."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import psutil


def _servers() -> set[int]:
    """Test-server processes left by a finished demo: the demo's folder they ran in is gone.

    (Other test sessions on the machine may run servers of their own meanwhile.)
    """
    found = set()
    for proc in psutil.process_iter(["pid", "cmdline"]):
        cmdline = proc.info["cmdline"] or []
        if not any("dotevals.testing" in part for part in cmdline):
            continue
        try:
            cwd = proc.cwd()
        except psutil.Error:
            continue
        if "dotevals-demo-" in cwd and not Path(cwd.removesuffix(" (deleted)")).exists():
            found.add(proc.info["pid"])
    return found


def test_demo_runs_end_to_end_and_leaves_no_process(tmp_path: Path) -> None:
    before = _servers()
    done = subprocess.run(
        [sys.executable, "-m", "dotevals.cli", "demo", "--experiment", "demo1"],
        cwd=tmp_path,
        env={**os.environ, "COLUMNS": "200"},  # wide enough that no figure wraps
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 passed" in done.stdout
    # each evaluation's accuracy with its interval, n, method and level, e.g.
    # "0.778 [0.592, 0.894] n=9 Wilson 95%"
    figure = r"(\d\.\d{3}) \[(-?\d\.\d{3}), (\d\.\d{3})\] n=(\d+) Wilson 95%"
    for score in ("numeric_match", "exact_match"):
        found = re.search(rf"{score}\.accuracy {figure}", done.stdout)
        assert found is not None, done.stdout
        assert int(found.group(4)) > 0
        value, low, high = (float(g) for g in found.groups()[:3])
        assert 0.0 <= value <= 1.0
        assert low <= value <= high
        assert low < high
    assert "dotevals show demo1" in done.stdout
    _the_report_hint_writes_the_report(done.stdout, tmp_path)
    stored = sorted(p.name for p in (tmp_path / ".dotevals" / "demo1").iterdir())
    assert stored == ["eval_arithmetic.jsonl", "eval_capitals.jsonl"]
    assert _servers() <= before
    shown = subprocess.run(
        [sys.executable, "-m", "dotevals.cli", "show", "demo1"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert shown.returncode == 0
    assert "eval_capitals: 5 rows, 0 errors" in shown.stdout


def _the_report_hint_writes_the_report(stdout: str, folder: Path) -> None:
    """The demo's last line is a ``dotevals report`` command that works as printed."""
    last = stdout.strip().splitlines()[-1]
    prefix = "Or in a browser, as one HTML file: "
    assert last.startswith(prefix + "dotevals report demo1 --storage "), stdout
    words = shlex.split(last.removeprefix(prefix))
    assert words[-2:] == ["-o", "report.html"]
    written = subprocess.run(
        [sys.executable, "-m", "dotevals.cli", *words[1:]],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert written.returncode == 0, written.stdout + written.stderr
    document = (folder / "report.html").read_text(encoding="utf-8")
    assert "eval_capitals" in document and "eval_arithmetic" in document
