"""Hugging Face datasets: saved to disk, local files, the Hub offline, objects given directly."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import datasets as hf
import pytest

import dotevals
from dotevals import foreach
from dotevals.datasets import huggingface
from dotevals.errors import ConfigurationError

DATA = {"problem": ["1+1", "2+3", "4+4"], "solution": ["2", "5", "8"], "level": [1, 2, 3]}
ROWS = [
    {"problem": p, "solution": s, "level": n}
    for p, s, n in zip(DATA["problem"], DATA["solution"], DATA["level"])
]


@pytest.fixture
def saved(tmp_path: Path) -> Path:
    path = tmp_path / "saved"
    hf.Dataset.from_dict(DATA).save_to_disk(str(path))
    return path


def test_columns_are_checked_at_once_naming_the_dataset(saved: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"^huggingface\('.*saved'\): .*no column"):
        huggingface(saved, columns=[])


def test_a_saved_dataset_is_loaded_when_first_read_and_read_again(saved: Path) -> None:
    rows = huggingface(saved)
    with pytest.raises(TypeError, match="not loaded yet"):
        len(rows)
    assert list(rows) == ROWS
    assert list(rows) == ROWS
    assert len(rows) == 3


def test_columns_are_selected_and_renamed(saved: Path) -> None:
    rows = huggingface(saved, columns={"question": "problem", "answer": "solution"})
    assert list(rows) == [
        {"question": p, "answer": s} for p, s in zip(DATA["problem"], DATA["solution"])
    ]
    streamed = huggingface(saved, streaming=True, columns=["solution"])
    assert list(streamed) == [{"solution": "2"}, {"solution": "5"}, {"solution": "8"}]


def test_a_missing_column_is_named_with_those_there(saved: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"no column\(s\) \['question'\]") as caught:
        list(huggingface(saved, columns=["question"]))
    assert "'problem', 'solution', 'level'" in str(caught.value)


def test_a_saved_dataset_dict_needs_a_split_and_lists_them(tmp_path: Path) -> None:
    path = tmp_path / "dict"
    table = hf.Dataset.from_dict(DATA)
    hf.DatasetDict({"train": table, "test": table.select([0])}).save_to_disk(str(path))
    assert list(huggingface(path, split="test")) == ROWS[:1]
    with pytest.raises(ConfigurationError, match=r"holds splits \['test', 'train'\]"):
        list(huggingface(path))


def test_local_files_load_through_a_builder(tmp_path: Path) -> None:
    data = tmp_path / "rows.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    rows = huggingface(
        "json", split="train", data_files=str(data), cache_dir=str(tmp_path / "cache")
    )
    assert list(rows) == ROWS


def test_a_path_that_does_not_load_is_named(tmp_path: Path) -> None:
    rows = huggingface(tmp_path / "nothing-here", split="train")  # nothing is loaded yet
    with pytest.raises(ConfigurationError, match="could not be loaded") as caught:
        list(rows)
    assert "nothing-here" in str(caught.value)


@pytest.mark.parametrize("streaming", [False, True])
def test_a_dataset_object_runs_directly_under_foreach(
    tmp_path: Path, saved: Path, streaming: bool
) -> None:
    loaded = hf.load_from_disk(str(saved))
    dataset = loaded.to_iterable_dataset() if streaming else loaded

    @foreach("problem,solution", dataset)
    def eval_sum(problem: str, solution: str) -> bool:
        left, right = problem.split("+")
        return int(left) + int(right) == int(solution)

    storage = f"json://{tmp_path / 'store'}"
    for experiment in ("one", "two"):  # a second run reads the dataset again
        results = dotevals.run(eval_sum, experiment=experiment, storage=storage, progress=False)
        assert [r.scores[0].value for r in results.records] == [True, True, True]


OFFLINE = """
from dotevals import foreach
import dotevals
from dotevals.datasets import huggingface
from dotevals.errors import DatasetUnavailableError

rows = huggingface("dotevals-test/not-cached", split="test")
try:
    list(rows)
except DatasetUnavailableError as exc:
    print("UNAVAILABLE", exc.dataset, "|", exc)
"""


def test_a_hub_name_offline_says_it_needs_the_network(tmp_path: Path) -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    done = subprocess.run(
        [sys.executable, "-c", OFFLINE],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    line = done.stdout.strip().splitlines()[-1]
    assert line.startswith("UNAVAILABLE dotevals-test/not-cached |")
    assert "needs the network" in line
    assert "save_to_disk" in line


def test_a_dataset_object_given_to_huggingface_gets_its_columns_picked() -> None:
    rows = huggingface(hf.Dataset.from_dict(DATA), columns={"q": "problem"})
    assert list(rows) == [{"q": "1+1"}, {"q": "2+3"}, {"q": "4+4"}]
    assert len(rows) == 3
    with pytest.raises(ConfigurationError, match=r"no column\(s\) \['q'\]"):
        list(huggingface(hf.Dataset.from_dict(DATA), columns=["q"]))
