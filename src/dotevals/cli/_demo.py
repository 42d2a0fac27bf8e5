"""``dotevals demo``: run the bundled evaluation against the local model server."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import click

from dotevals.cli._hints import show_hint
from dotevals.demo import DEMO_DIR

__all__ = ["demo_command"]


@click.command("demo")
@click.option("--experiment", default=None, help="experiment name (default demo-<time>)")
@click.option(
    "--storage", default=None, help="where results go (default: .dotevals in this folder)"
)
def demo_command(experiment: str | None, storage: str | None) -> None:
    """Run a small evaluation end to end against the bundled local model: no API key needed."""
    experiment = experiment or time.strftime("demo-%Y%m%d-%H%M%S")
    storage = storage or f"json://{Path.cwd() / '.dotevals'}"
    with tempfile.TemporaryDirectory(prefix="dotevals-demo-") as tmp:
        shutil.copy(DEMO_DIR / "eval_demo.py", tmp)
        command = [
            sys.executable,
            "-m",
            "pytest",
            str(Path(tmp) / "eval_demo.py"),
            f"--rootdir={tmp}",
            "-p",
            "no:cacheprovider",
            "--experiment",
            experiment,
            "--storage",
            storage,
            "-v",
        ]
        code = subprocess.call(command, cwd=tmp)
    shown = show_hint(experiment, "--storage", storage)
    click.echo(f"\nSee the results: {shown}")
    click.echo(f"Or in a browser, as one HTML file: {report_hint(experiment, storage)}")
    sys.exit(code)


def report_hint(experiment: str, storage: str) -> str:
    """``dotevals report EXPERIMENT --storage STORAGE -o report.html``, shell-quoted."""
    return shlex.join(["dotevals", "report", experiment, "--storage", storage, "-o", "report.html"])
