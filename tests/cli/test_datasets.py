"""``dotevals datasets``: the registered datasets, with their splits and columns."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from distributions import make_distribution
from dotevals.cli import main

PUBLISHED = ("bfcl", "gsm8k", "humaneval", "mmlu", "sroie")

WORDS = """
from dotevals.datasets import Dataset

class Words(Dataset):
    name = "words"
    splits = ["all"]
    columns = ["word", "length"]

    def __init__(self, split=None):
        raise AssertionError("listing must not build a dataset")

    def __iter__(self):
        return iter([])
"""


def test_the_cli_lists_them_with_splits_and_columns() -> None:
    listed = CliRunner().invoke(main, ["datasets"])
    assert listed.exit_code == 0, listed.output
    assert "gsm8k  splits: train, test  columns: question, reasoning, answer" in listed.output
    rows = [
        json.loads(line)
        for line in CliRunner().invoke(main, ["datasets", "--json"]).output.splitlines()
    ]
    assert {r["name"] for r in rows} >= set(PUBLISHED)
    mmlu = next(r for r in rows if r["name"] == "mmlu")
    assert mmlu["splits"] == ["test", "validation", "dev"]


def test_a_broken_plugin_is_reported_and_the_others_are_listed(tmp_path: Path) -> None:
    site = tmp_path / "site"
    group = "dotevals.datasets"
    make_distribution(
        site, "words_plugin", {"words": "words_mod:Words"}, {"words_mod": WORDS}, group
    )
    make_distribution(
        site, "broken_plugin", {"broken": "broken_mod:X"}, {"broken_mod": "1/0"}, group
    )
    path = os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH", "")) if p)
    done = subprocess.run(
        [sys.executable, "-m", "dotevals.cli", "datasets"],
        env={**os.environ, "PYTHONPATH": path},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert "words  splits: all  columns: word, length" in done.stdout
    assert "broken: failed to load" in done.stderr
    assert "broken_plugin" in done.stderr
    assert "ZeroDivisionError" in done.stderr
