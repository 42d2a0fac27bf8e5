"""Report tests: stores written through the storage API, and a real headless Chromium."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dotevals.storage import JSONLStorage
from report.runs import two_model_records, write_run

#: Where Debian (``apt-get install chromium chromium-driver``) and other systems put them.
_BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


@pytest.fixture
def two_models(tmp_path: Path) -> JSONLStorage:
    """Experiment ``pair``: ``eval_x[local:a]`` and ``eval_x[local:b]``, as ``--model`` stores."""
    store = JSONLStorage(tmp_path / ".dotevals")
    a, b = two_model_records()
    write_run(store, "pair", "eval_x[local:a]", a)
    write_run(store, "pair", "eval_x[local:b]", b)
    return store


def _find_browser() -> tuple[str, str] | None:
    binary = next((found for b in _BROWSERS if (found := shutil.which(b))), None)
    driver = shutil.which("chromedriver")
    return (binary, driver) if binary and driver else None


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """A headless Chromium driven by selenium, shared by the session's browser tests."""
    found = _find_browser()
    if found is None:
        reason = (
            "headless Chromium is not installed (no chromium and chromedriver on PATH): "
            "apt-get install -y chromium chromium-driver, as .ci/run does"
        )
        if os.environ.get("DOTEVALS_REQUIRE_BROWSER"):
            pytest.fail(reason)
        pytest.skip(reason)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = found[0]
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(argument)
    options.add_argument("--window-size=1400,1600")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(found[1]), options=options)
    yield driver
    driver.quit()
