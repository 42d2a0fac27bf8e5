"""The report file itself: self-contained, escaped, free of secrets, linear in size."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from dotevals.report import build_view, redact, render_html, write_report
from dotevals.storage import JSONLStorage
from report.runs import BREAKOUT_RESPONSE, SCRIPT_RESPONSE, failed, header, ok, write_run


class _Scripts(HTMLParser):
    """The page's script elements, their attributes and text, as a browser's parser sees them."""

    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[tuple[dict[str, str | None], str]] = []
        self._inside: dict[str, str | None] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "script":
            self._inside = dict(attrs)
            self.scripts.append((self._inside, ""))

    def handle_data(self, data: str) -> None:
        if self._inside is not None:
            attrs, text = self.scripts[-1]
            self.scripts[-1] = (attrs, text + data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._inside = None


def _scripts(document: str) -> list[tuple[dict[str, str | None], str]]:
    parser = _Scripts()
    parser.feed(document)
    return parser.scripts


def test_stored_text_stays_inside_the_inline_json(two_models: JSONLStorage) -> None:
    document = render_html(build_view(two_models, ["pair"]))
    (data, script) = _scripts(document)
    assert data[0] == {"type": "application/json", "id": "dotevals-data"}
    assert script[0] == {}
    rows = json.loads(data[1])["evaluations"][0]["rows"]
    assert rows[4]["c"][0]["r"] == SCRIPT_RESPONSE
    assert rows[4]["c"][1]["r"] == BREAKOUT_RESPONSE


def test_only_the_page_script_may_run_and_nothing_is_fetched(two_models: JSONLStorage) -> None:
    document = render_html(build_view(two_models, ["pair"]))
    script = _scripts(document)[1][1]
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    policy = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', document)
    assert policy is not None
    assert policy[1].startswith(f"default-src 'none'; script-src 'sha256-{digest}';")
    assert re.findall(r"\b(?:src|href)=\"([^\"]*)\"", document) == ["data:,"]


def test_names_from_a_run_are_escaped_in_tables_plots_and_filters(tmp_path: Path) -> None:
    store = JSONLStorage(tmp_path / ".dotevals")
    write_run(store, "pair", 'eval_x[<img src=x onerror="alert(1)">]', [ok(0, True)])
    write_run(store, "pair", "eval_x[b]", [ok(0, False)])
    document = render_html(build_view(store, ["pair"]))
    assert "<img" not in document
    assert document.count("&lt;img src=x onerror=&quot;alert(1)&quot;&gt;") >= 4


def test_secrets_never_reach_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key, token, bearer = (
        "sk-proj-Abcdefghijklmnop12345",
        "hunter2-service",
        "Bearer abcdefghijklmnopq",
    )
    monkeypatch.setenv("OPENAI_API_KEY", key)
    monkeypatch.setenv("MY_SERVICE_TOKEN", token)
    store = JSONLStorage(tmp_path / ".dotevals")
    records = [failed(0, f"401: incorrect API key {key}"), ok(1, True, f"token {token}")]
    records.append(ok(2, True, prompt=f"headers: Authorization: {bearer}"))
    write_run(store, "leaky", "eval_l", records)
    document = write_report(store, ["leaky"], tmp_path / "r.html").read_text()
    for secret in (key, token, bearer):
        assert secret not in document
    assert document.count("[redacted]") == 3


def test_redact_keeps_ordinary_text() -> None:
    environ = {"OPENAI_API_KEY": "short", "HOME": "/root/longer-path", "A_SECRET": "s3cr3t-value"}
    assert redact("short /root/longer-path s3cr3t-value", environ) == (
        "short /root/longer-path [redacted]"
    )


def _size(tmp_path: Path, rows: int) -> int:
    store = JSONLStorage(tmp_path / f"store-{rows}")
    a, b = ([ok(i, i % 2 == 0) for i in range(rows)] for _ in range(2))
    write_run(store, "size", "eval_s[a]", a)
    write_run(store, "size", "eval_s[b]", b)
    return len(render_html(build_view(store, ["size"])).encode())


def test_file_size_grows_linearly_with_the_rows(tmp_path: Path) -> None:
    base, half, full = (_size(tmp_path, n) for n in (1, 501, 1001))
    assert (full - base) / (half - base) == pytest.approx(2.0, rel=0.03)


def test_the_report_is_written_whole(two_models: JSONLStorage, tmp_path: Path) -> None:
    path = write_report(two_models, ["pair"], tmp_path / "deep" / "report.html")
    assert path.read_text().endswith("</html>")
    assert sorted(p.name for p in path.parent.iterdir()) == ["report.html"]


def test_non_finite_numbers_in_a_store_do_not_break_the_page(tmp_path: Path) -> None:
    store = JSONLStorage(tmp_path / ".dotevals")
    write_run(store, "odd", "eval_o", [ok(0, True)])
    line = ok(1, float("nan")).to_dict() | {"duration": float("nan"), "attempts": float("inf")}
    with (tmp_path / ".dotevals" / "odd" / "eval_o.jsonl").open("a") as f:
        f.write(json.dumps(line) + "\n")
    rows = json.loads(_scripts(render_html(build_view(store, ["odd"])))[0][1])
    cell = rows["evaluations"][0]["rows"][1]["c"][0]
    assert (cell.get("t"), cell["a"], cell["s"], cell["k"]) == (None, 1, [["exact", "NaN"]], None)


def test_run_facts_name_the_stored_model(tmp_path: Path) -> None:
    store = JSONLStorage(tmp_path / ".dotevals")
    writer = store.open_writer("m", "eval_m", header(model="gpt-4o-<mini>"))
    writer.append(ok(0, True))
    writer.close()
    document = render_html(build_view(store, ["m"]))
    assert "<td>m / eval_m</td><td>gpt-4o-&lt;mini&gt;</td>" in document


def test_a_dataset_warning_heads_its_evaluation(tmp_path: Path) -> None:
    store = JSONLStorage(tmp_path / ".dotevals")
    store.open_writer("other", "eval_x", header(dataset_fingerprint="sha256:<beef>")).close()
    write_run(store, "other", "eval_x", [ok(0, True)])
    write_run(store, "pair", "eval_x", [ok(0, True)])
    document = render_html(build_view(store, ["pair", "other"]))
    assert '<h2>eval_x</h2><p class="warning">Warning: the models read different' in document
    assert "other: sha256:&lt;beef&gt;" in document
