"""The report in a real headless Chromium: it loads cleanly, filters, sorts, pages, opens
rows, shows the stored figures and runs nothing that a dataset or a model wrote."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

from dotevals.cli import main
from dotevals.report import write_report
from dotevals.storage import JSONLStorage
from report.runs import BREAKOUT_RESPONSE, SCRIPT_RESPONSE, ok, write_run

ROWS = 'section.rows[data-eval="0"]'


def open_report(browser: Any, path: Path) -> None:
    """Load the report and wait until its script has drawn the rows."""
    browser.get(path.as_uri())
    WebDriverWait(browser, 20).until(
        lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "1"
    )


def console_errors(browser: Any) -> list[dict[str, Any]]:
    return [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]


def visible_items(browser: Any) -> list[int]:
    script = f"return [...document.querySelectorAll('{ROWS} tbody tr')].map(t => +t.dataset.item)"
    return list(browser.execute_script(script))


def control(browser: Any, cls: str) -> Any:
    return browser.find_element(By.CSS_SELECTOR, f"{ROWS} .{cls}")


@pytest.fixture
def pair_report(two_models: JSONLStorage, tmp_path: Path, browser: Any) -> Path:
    path = write_report(two_models, ["pair"], tmp_path / "report.html")
    open_report(browser, path)
    return path


def test_page_loads_with_no_console_error_and_shows_the_stored_figures(
    browser: Any, pair_report: Path, two_models: JSONLStorage
) -> None:
    assert console_errors(browser) == []
    shown = CliRunner().invoke(main, ["show", "pair", "--json", "--storage", two_models.url])
    cells = [
        [td.text for td in tr.find_elements(By.TAG_NAME, "td")]
        for tr in browser.find_elements(By.CSS_SELECTOR, "table.metrics tbody tr")
    ]
    expected = []
    for evaluation in json.loads(shown.output)["evaluations"]:
        figure = evaluation["metrics"][0]["with_errors"]
        model = evaluation["name"].removeprefix("eval_x[").removesuffix("]")
        interval = f"[{figure['ci_low']:.3f}, {figure['ci_high']:.3f}]"
        level = f"{figure['level'] * 100:g}%"
        shown_figure = [f"{figure['value']:.3f}", interval, str(figure["count"])]
        expected.append(["exact", "accuracy", model, *shown_figure, figure["method"], level])
    assert cells == expected
    assert [row[6:] for row in cells] == [["Wilson", "95%"], ["Wilson", "95%"]]
    compared = CliRunner().invoke(
        main, ["compare", "pair", "pair", "--json", "--storage", two_models.url]
    )
    (result,) = json.loads(compared.output)["comparisons"]
    differences = browser.find_element(By.CSS_SELECTOR, "table.differences tbody tr")
    diff = result["diff"]
    assert [td.text for td in differences.find_elements(By.TAG_NAME, "td")] == [
        "exact",
        "local:b - local:a",
        f"{diff['estimate']:.3f}",
        f"[{diff['lo']:.3f}, {diff['hi']:.3f}]",
        str(result["n"]),
        str(result["left_out"]),
        f"{result['p_value']:.4f}",
        "McNemar exact",
        diff["method"],
        "95%",
    ]
    assert len(browser.find_elements(By.CSS_SELECTOR, "svg.plot circle")) == 3  # 2 models + 1 diff


def _check(cls: str) -> Callable[[Any], None]:
    return lambda browser: control(browser, cls).click()


def _wrong_for(model: str) -> Callable[[Any], None]:
    return lambda browser: Select(control(browser, "f-wrong")).select_by_visible_text(model)


def _search(text: str) -> Callable[[Any], None]:
    return lambda browser: control(browser, "f-search").send_keys(text)


def _both(*actions: Callable[[Any], None]) -> Callable[[Any], None]:
    def run(browser: Any) -> None:
        for action in actions:
            action(browser)

    return run


@pytest.mark.parametrize(
    ("action", "expected"),
    [
        (_check("f-errors"), [3]),
        (_check("f-disagree"), [1, 2, 3]),
        (_wrong_for("local:a"), [2, 3]),
        (_wrong_for("local:b"), [1]),
        (_search("PARIS"), [5]),
        (_search("prompt 2"), [2]),
        (_both(_check("f-errors"), _wrong_for("local:b")), []),
        (_both(_check("f-errors"), _check("f-errors")), [0, 1, 2, 3, 4, 5]),
    ],
    ids=["errors", "disagreements", "wrong-a", "wrong-b", "search", "search-prompt", "and", "off"],
)
def test_each_filter_shows_the_expected_rows(
    browser: Any, pair_report: Path, action: Callable[[Any], None], expected: list[int]
) -> None:
    assert visible_items(browser) == [0, 1, 2, 3, 4, 5]
    action(browser)
    assert visible_items(browser) == expected
    assert control(browser, "count").text == f"{len(expected)} of 6 rows"


def test_headers_sort_the_rows(browser: Any, pair_report: Path) -> None:
    header = browser.find_element(By.CSS_SELECTOR, f'{ROWS} th[data-sort="k1"]')
    header.click()
    assert visible_items(browser) == [1, 0, 2, 3, 4, 5]  # wrong first, no record last
    header.click()
    assert visible_items(browser) == [5, 4, 3, 2, 0, 1]
    browser.find_element(By.CSS_SELECTOR, f'{ROWS} th[data-sort="i"]').click()
    assert visible_items(browser) == [0, 1, 2, 3, 4, 5]


def test_a_row_opens_its_detail(browser: Any, pair_report: Path) -> None:
    detail = control(browser, "detail")
    assert not detail.is_displayed()
    browser.find_element(By.CSS_SELECTOR, f'{ROWS} tr[data-item="3"]').click()
    assert detail.is_displayed()
    for text in ("Item 3", "prompt 3", '"question": "question 3"', "ValueError: boom"):
        assert text in detail.text
    assert "Traceback: line 1" in detail.text
    assert "local:a" in detail.text and "local:b" in detail.text
    assert "0.250 s" in detail.text
    detail.find_element(By.CSS_SELECTOR, "button.close").click()
    assert not detail.is_displayed()


def test_script_and_markup_from_a_model_run_nothing(browser: Any, pair_report: Path) -> None:
    browser.find_element(By.CSS_SELECTOR, f'{ROWS} tr[data-item="4"]').click()
    assert browser.execute_script("return window.__pwned === undefined")
    row = browser.find_element(By.CSS_SELECTOR, f'{ROWS} tr[data-item="4"]').text
    assert SCRIPT_RESPONSE in row and BREAKOUT_RESPONSE in row
    assert "javascript:window.__pwned = 3" in row
    for tag in ("img", "b", "a"):
        assert browser.find_elements(By.CSS_SELECTOR, f"section {tag}") == []
    assert SCRIPT_RESPONSE in control(browser, "detail").text
    assert console_errors(browser) == []  # nothing was even blocked: nothing tried to run
    assert pair_report.read_text().count("</script>") == 2  # the page's own two


def test_a_screenshot_is_taken(browser: Any, pair_report: Path, tmp_path: Path) -> None:
    browser.find_element(By.CSS_SELECTOR, f'{ROWS} tr[data-item="1"]').click()
    shot = tmp_path / "report.png"
    assert browser.save_screenshot(str(shot))
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_rows_come_in_pages(browser: Any, tmp_path: Path) -> None:
    store = JSONLStorage(tmp_path / ".dotevals")
    write_run(store, "big", "eval_big", [ok(i, i % 3 != 0) for i in range(250)])
    open_report(browser, write_report(store, ["big"], tmp_path / "big.html"))
    assert visible_items(browser) == list(range(100))
    control(browser, "next").click()
    assert visible_items(browser) == list(range(100, 200))
    assert control(browser, "page").text == "page 2 of 3"
    control(browser, "next").click()
    control(browser, "next").click()
    assert visible_items(browser) == list(range(200, 250))
    control(browser, "prev").click()
    assert visible_items(browser)[0] == 100
    Select(control(browser, "f-wrong")).select_by_visible_text("big")
    assert visible_items(browser)[:3] == [0, 3, 6]  # a filter starts again at page 1
    assert control(browser, "count").text == "84 of 250 rows"
    assert console_errors(browser) == []


def test_the_detail_shows_tokens_and_cost_stored_with_a_record(
    browser: Any, tmp_path: Path
) -> None:
    store = JSONLStorage(tmp_path / ".dotevals")
    write_run(store, "paid", "eval_p", [ok(0, True)])
    line = ok(1, True).to_dict() | {"usage": {"total_tokens": 9}, "cost": 0.125}
    with (tmp_path / ".dotevals" / "paid" / "eval_p.jsonl").open("a") as f:
        f.write(json.dumps(line) + "\n")
    open_report(browser, write_report(store, ["paid"], tmp_path / "paid.html"))
    browser.find_element(By.CSS_SELECTOR, f'{ROWS} tr[data-item="1"]').click()
    detail = control(browser, "detail").text
    assert 'tokens\n{"total_tokens": 9}' in detail and "cost\n0.125" in detail
    browser.find_element(By.CSS_SELECTOR, f'{ROWS} tr[data-item="0"]').click()
    assert "tokens" not in control(browser, "detail").text
    assert console_errors(browser) == []
