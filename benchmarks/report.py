"""Report benchmark: ``python benchmarks/report.py`` (``--rows N``, default 20 000 per model).

Two models' runs of N rows are stored in a JSONL store; the report is built from them and
opened in headless Chromium (``chromium`` and ``chromedriver`` on PATH). Printed, each next to
a baseline measured in the same run:

* build time (read the store, view model, HTML) against only reading the store (``load``);
* file size, and its growth against a report of N / 10 rows (linear means x10);
* time until the page is drawn, against a page that holds the same JSON and only parses it;
* time of a filter (errors only, a text search) and of turning a page, in the browser.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from dotevals.report import build_view, render_html
from dotevals.results import Header, Record, Summary
from dotevals.storage import JSONLStorage


def _record(i: int, model: int) -> Record:
    right = (i * 7 + model * 3) % 10 != 0
    error = {"type": "APITimeoutError", "message": "timed out", "traceback": ""}
    score = {"name": "numeric_match", "value": right, "metrics": ["accuracy"], "metadata": {}}
    return Record.from_dict(
        {
            "item_id": i,
            "dataset_row": {"question": f"What is {i} + {i % 97}?", "answer": str(i + i % 97)},
            "prompt": f"Answer with a number only. What is {i} + {i % 97}?",
            "model_response": f"The answer is {i + i % 97 + (0 if right else 1)}.",
            "scores": [score],
            "error": error if i % 501 == model else None,
            "timestamp": 1.0,
            "duration": 0.2 + (i % 13) / 100,
        }
    )


def make_store(root: Path, rows: int) -> JSONLStorage:
    store = JSONLStorage(root)
    for model in (0, 1):
        name = f"eval_sums[local:m{model}]"
        writer = store.open_writer("bench", name, Header("bench", name, started_at=1.0))
        for i in range(rows):
            writer.append(_record(i, model))
        writer.write_summary(Summary(duration=1.0, concurrency=[(0.0, 16)]))
        writer.close()
    return store


def build(store: JSONLStorage, path: Path) -> tuple[float, float, int]:
    """Seconds to build the report, seconds to only read the store, bytes written."""
    start = time.perf_counter()
    path.write_text(render_html(build_view(store, ["bench"])), encoding="utf-8")
    built = time.perf_counter() - start
    start = time.perf_counter()
    for evaluation in store.list_evaluations("bench"):
        store.load("bench", evaluation)
    return built, time.perf_counter() - start, path.stat().st_size


def baseline_page(report: Path, path: Path) -> None:
    """The floor: the report's own JSON block, parsed by a one-line script."""
    document = report.read_text(encoding="utf-8")
    start = document.index('<script type="application/json"')
    end = document.index("</script>", start) + len("</script>")
    script = (
        "<script>JSON.parse(document.getElementById('dotevals-data').textContent);"
        "document.body.setAttribute('data-ready','1')</script>"
    )
    path.write_text(f"<!DOCTYPE html><html><body>{document[start:end]}{script}</body></html>")


def browser() -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    binary = shutil.which("chromium") or shutil.which("google-chrome")
    driver = shutil.which("chromedriver")
    if binary is None or driver is None:
        raise SystemExit("needs chromium and chromedriver on PATH (apt-get install chromium)")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(argument)
    return webdriver.Chrome(service=Service(driver), options=options)


def load_ms(driver: Any, path: Path) -> float:
    """Milliseconds from navigation start until the page says it is drawn."""
    driver.get(path.as_uri())
    for _ in range(600):
        if driver.execute_script("return document.body.getAttribute('data-ready')") == "1":
            return float(driver.execute_script("return performance.now()"))
        time.sleep(0.05)
    raise RuntimeError(f"{path} was not drawn within 30 s")


_ACTIONS = {
    "errors only": "document.querySelector('.f-errors').click()",
    "text search": "var s = document.querySelector('.f-search'); s.value = '1234';"
    "s.dispatchEvent(new Event('input'))",
    "next page": "document.querySelector('.f-search').value = '';"
    "document.querySelector('.f-errors').click(); document.querySelector('.next').click()",
}


def action_ms(driver: Any, script: str) -> float:
    timed = f"var t = performance.now(); {script}; return performance.now() - t"
    return float(driver.execute_script(timed))


def median(values: list[float]) -> float:
    return sorted(values)[len(values) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000, help="rows per model")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="dotevals-report-bench-") as tmp:
        root = Path(tmp)
        small_build, _, small_size = build(
            make_store(root / "small", args.rows // 10), root / "s.html"
        )
        report = root / "report.html"
        built, read, size = build(make_store(root / "big", args.rows), report)
        baseline_page(report, root / "baseline.html")
        driver = browser()
        try:
            loads = [load_ms(driver, report) for _ in range(3)]
            floors = [load_ms(driver, root / "baseline.html") for _ in range(3)]
            load_ms(driver, report)
            actions = {name: action_ms(driver, script) for name, script in _ACTIONS.items()}
        finally:
            driver.quit()
    rows = 2 * args.rows
    print(f"report of 2 models x {args.rows} rows ({rows} cells)")
    ratio = built / read
    print(f"  build      {built:6.2f} s   reading the store {read:.2f} s  ratio x{ratio:.1f}")
    print(f"  size       {size / 1e6:6.2f} MB  {size / rows:.0f} B per cell")
    growth, slower = size / small_size, built / small_build
    print(f"  growth     x{growth:.2f} for x10 rows (linear: x10); build x{slower:.1f}")
    load, floor = median(loads), median(floors)
    print(f"  drawn in   {load:6.0f} ms  parse-only page {floor:.0f} ms  ratio x{load / floor:.1f}")
    for name, ms in actions.items():
        print(f"  {name:<11}{ms:6.1f} ms")


if __name__ == "__main__":
    main()
