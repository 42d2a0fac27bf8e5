"""Dataset plugins found through ``dotevals.datasets`` entry points, broken ones included.

Entry points are read from ``importlib.metadata``, so each check runs in a fresh interpreter
with a site directory (dist-infos and modules) on ``PYTHONPATH``.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from distributions import make_distribution as make_any_distribution

BROKEN_MODULE = """
raise RuntimeError("the broken plugin cannot start")
"""

WORDS_MODULE = """
from dotevals.datasets import Dataset

class WordsDataset(Dataset):
    name = "words"
    columns = ["word"]

    def __iter__(self):
        return iter([("a",), ("b",)])
"""

REPORT = """
import json, sys

def report(**values):
    values["imported"] = sorted(m for m in ("broken_mod", "words_mod") if m in sys.modules)
    print(json.dumps(values))
"""

#: A distribution whose entry points are in the dataset group.
make_distribution = functools.partial(make_any_distribution, group="dotevals.datasets")


def make_words_plugin(site: Path) -> None:
    """A working dataset plugin: entry point ``zzz_words``, whose class is named ``words``."""
    make_distribution(
        site, "words_plugin", {"zzz_words": "words_mod:WordsDataset"}, {"words_mod": WORDS_MODULE}
    )


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """A broken dataset plugin (sorted first) and a working one whose class is ``words``."""
    site = tmp_path / "site"
    make_distribution(
        site, "broken_plugin", {"aaa_broken": "broken_mod:Thing"}, {"broken_mod": BROKEN_MODULE}
    )
    make_words_plugin(site)
    return site


def run_python(site: Path, code: str) -> dict[str, Any]:
    """Run ``code`` (after REPORT) with ``site`` on the path; what it ``report``-ed."""
    path = os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH", "")) if p)
    done = subprocess.run(
        [sys.executable, "-c", REPORT + textwrap.dedent(code)],
        env={**os.environ, "PYTHONPATH": path},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_a_broken_plugin_does_not_hide_one_found_by_class_name(site: Path) -> None:
    result = run_python(
        site,
        """
        import warnings
        from dotevals.datasets import load_dataset, registry

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            cls = registry.get_dataset_class("words")
            rows = list(load_dataset("words"))
        report(cls=cls.__name__, rows=rows, warnings=[str(w.message) for w in caught])
        """,
    )
    assert result["cls"] == "WordsDataset"
    assert result["rows"] == [["a"], ["b"]]
    assert result["warnings"]
    assert all("'aaa_broken'" in w and "broken_plugin" in w for w in result["warnings"])


def test_a_broken_plugin_asked_for_by_class_name_gives_the_load_error(site: Path) -> None:
    result = run_python(
        site,
        """
        from dotevals import foreach
        from dotevals.datasets import UnknownDatasetError, registry
        from dotevals.errors import PluginLoadError

        errors = []
        for call in (lambda: registry.get_dataset_class("thing"), lambda: foreach.thing("test")):
            try:
                call()
            except PluginLoadError as exc:
                errors.append({
                    "message": str(exc),
                    "unknown": isinstance(exc, UnknownDatasetError),
                    "cause": type(exc.__cause__).__name__,
                    "root": type(exc.__cause__.__cause__).__name__,
                    "name": exc.name,
                })
        report(errors=errors)
        """,
    )
    assert len(result["errors"]) == 2
    for error in result["errors"]:
        assert "'thing'" in error["message"]
        assert "'aaa_broken'" in error["message"]
        assert "broken_plugin" in error["message"]
        assert "RuntimeError: the broken plugin cannot start" in error["message"]
        assert "not found" not in error["message"]
        assert not error["unknown"]
        assert (error["cause"], error["root"]) == ("PluginLoadError", "RuntimeError")
        assert error["name"] == "aaa_broken"


def test_attribute_probes_import_no_plugin(site: Path) -> None:
    # a working plugin sorted before the broken one: loading the group would import it
    make_distribution(site, "early_plugin", {"aa_early": "words_mod:WordsDataset"}, {})
    result = run_python(
        site,
        """
        import dotevals.datasets

        probes = {
            name: hasattr(dotevals.datasets, name)
            for name in ("pytest_plugins", "__wrapped__", "_private", "words", "no_such")
        }
        report(probes=probes)
        """,
    )
    assert result["probes"] == dict.fromkeys(
        ("pytest_plugins", "__wrapped__", "_private", "words", "no_such"), False
    )
    assert result["imported"] == []


def test_an_entry_point_name_imports_only_its_plugin(site: Path) -> None:
    result = run_python(
        site,
        """
        from dotevals.datasets import zzz_words

        report(cls=zzz_words.__name__)
        """,
    )
    assert result == {"cls": "WordsDataset", "imported": ["words_mod"]}


def test_importing_a_broken_plugin_by_name_shows_why(site: Path) -> None:
    result = run_python(
        site,
        """
        from dotevals.errors import PluginLoadError

        try:
            from dotevals.datasets import aaa_broken
        except PluginLoadError as exc:
            report(message=str(exc))
        """,
    )
    assert "'aaa_broken'" in result["message"]
    assert "broken_plugin" in result["message"]
    assert "RuntimeError" in result["message"]
    assert result["imported"] == []


def test_an_unknown_name_is_still_unknown_without_broken_plugins(tmp_path: Path) -> None:
    site = tmp_path / "site"
    make_words_plugin(site)
    result = run_python(
        site,
        """
        from dotevals.datasets import UnknownDatasetError, registry

        try:
            registry.get_dataset_class("no_such")
        except UnknownDatasetError as exc:
            report(message=str(exc), value_error=isinstance(exc, ValueError))
        """,
    )
    assert "not found" in result["message"]
    assert "zzz_words" in result["message"]
    assert result["value_error"]
