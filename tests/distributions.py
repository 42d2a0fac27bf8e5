"""Installed distributions made in a test: a dist-info with entry points, and its modules."""

from __future__ import annotations

import textwrap
from pathlib import Path


def make_distribution(
    site: Path,
    name: str,
    entry_points: dict[str, str],
    modules: dict[str, str],
    group: str = "dotevals.model_providers",
) -> None:
    """An installed distribution in ``site``: its dist-info, ``group`` entry points and modules."""
    info = site / f"{name}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    lines = "".join(f"{key} = {value}\n" for key, value in entry_points.items())
    (info / "entry_points.txt").write_text(f"[{group}]\n{lines}")
    for module, source in modules.items():
        (site / f"{module}.py").write_text(textwrap.dedent(source))
