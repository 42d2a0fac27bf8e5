"""The published ``dotevals-datasets`` package (0.8, written for the original dotevals), as
installed by the ``test`` extra: its datasets register through the entry points, are built only
when an evaluation reads them, and offline they fail with an error that says so.
"""

from __future__ import annotations

import json
from importlib.metadata import distribution

import pytest

from dotevals.datasets import RegisteredDataset, get_dataset_info, list_available

PUBLISHED = ("bfcl", "gsm8k", "humaneval", "mmlu", "sroie")

EVAL_GSM8K = """
from dotevals import foreach

@foreach.gsm8k("test")
def eval_gsm8k(question, reasoning, answer):
    return True
"""

#: Writes which of the dataset's modules collection imported.
CONFTEST = """
import json, sys

def pytest_collection_finish(session):
    imported = [m for m in ("dotevals_datasets", "datasets") if m in sys.modules]
    open("collected.json", "w").write(json.dumps(imported))
"""

#: A project that sets its loop scope, so pytest-asyncio has nothing to warn about.
INI = "[pytest]\nasyncio_default_fixture_loop_scope = session\n"


def test_the_published_package_is_the_real_one() -> None:
    dist = distribution("dotevals-datasets")
    assert dist.version.startswith("0.8")
    assert {ep.name for ep in dist.entry_points if ep.group == "dotevals.datasets"} == set(
        PUBLISHED
    )


def test_its_datasets_register_with_their_splits_and_columns() -> None:
    assert set(PUBLISHED) <= set(list_available())
    info = get_dataset_info("gsm8k")
    assert info["splits"] == ["train", "test"]
    assert info["columns"] == ["question", "reasoning", "answer"]


def test_foreach_name_builds_nothing_until_the_rows_are_read() -> None:
    from dotevals import foreach
    from dotevals.decorators import get_spec

    @foreach.gsm8k("test")
    def eval_gsm8k(question: str, reasoning: str, answer: str) -> bool:
        return True

    spec = get_spec(eval_gsm8k)
    assert spec is not None
    assert spec.columns == ("question", "reasoning", "answer")
    assert isinstance(spec.dataset, RegisteredDataset)
    with pytest.raises(TypeError, match="not built yet"):
        len(spec.dataset)


def test_offline_the_evaluation_fails_naming_the_dataset_and_the_network(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(pytester.path / "hf"))
    pytester.makepyfile(eval_gsm8k=EVAL_GSM8K)
    pytester.makeini(INI)
    pytester.makeconftest(CONFTEST)
    result = pytester.runpytest_subprocess("eval_gsm8k.py", "--experiment", "offline")
    # the plugin's module is imported for the columns; Hugging Face only when the rows are read
    assert json.loads((pytester.path / "collected.json").read_text()) == ["dotevals_datasets"]
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*DatasetUnavailableError*dataset 'gsm8k' needs the network*"])
