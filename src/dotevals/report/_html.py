"""The report as one self-contained HTML file: inline styles, script and data, no network.

Every stored value is text. The parts drawn here (tables, plots) escape it with
:func:`html.escape`; the rows travel as JSON in a ``<script type="application/json">`` block
(``<``, ``>`` and ``&`` written as ``\\u`` escapes, so ``</script>`` cannot end it) and the
page's script shows them with ``textContent`` only. A Content-Security-Policy lets only the
page's own script run and the page fetch nothing.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import os
import re
from datetime import datetime
from html import escape
from importlib import resources
from typing import Any, Final

from dotevals.report._svg import interval_plot
from dotevals.report._view import EvaluationView, ReportView, RunFacts, text
from dotevals.results import Header
from dotevals.stats import Interval, format_level

__all__ = ["redact", "render_html"]

_SECRET_NAME: Final = re.compile(r"KEY|TOKEN|SECRET|PASSW|CREDENTIAL|AUTH", re.IGNORECASE)
_SECRET_SHAPES: Final = re.compile(
    r"\bsk-[A-Za-z0-9_-]{16,}|\bBearer\s+[A-Za-z0-9._~+/=-]{16,}", re.IGNORECASE
)
_REDACTED: Final = "[redacted]"
#: Environment values shorter than this are too common to be told from ordinary text.
_MIN_SECRET: Final = 8


def redact(document: str, environ: dict[str, str] | None = None) -> str:
    """``document`` with API keys and other secrets replaced by ``[redacted]``.

    Secrets are the values of environment variables whose names say so (``*KEY*``,
    ``*TOKEN*``, ``*SECRET*``, ...), and anything shaped like an OpenAI key or a bearer token.
    """
    environ = dict(os.environ) if environ is None else environ
    values = sorted(
        {v for k, v in environ.items() if _SECRET_NAME.search(k) and len(v) >= _MIN_SECRET},
        key=len,
        reverse=True,
    )
    for value in values:
        document = document.replace(value, _REDACTED)
    return _SECRET_SHAPES.sub(_REDACTED, document)


def _asset(name: str) -> str:
    return resources.files("dotevals.report").joinpath(name).read_text(encoding="utf-8")


def _script_json(value: Any) -> str:
    """JSON that is safe inside ``<script>``: no ``<``, ``>``, ``&`` or line separators."""
    raw = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    for char, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
        raw = raw.replace(char, escaped)
    return raw.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def _num(value: float | None, digits: int = 3) -> str:
    if value is None or not math.isfinite(value):
        return "n/a"
    return f"{value:.{digits}f}"


def _cells(*values: object, tag: str = "td") -> str:
    return "".join(f"<{tag}>{escape(str(v))}</{tag}>" for v in values)


def _table(cls: str, head: list[str], rows: list[list[object]]) -> str:
    body = "".join(f"<tr>{_cells(*row)}</tr>" for row in rows)
    return f'<table class="{cls}"><thead><tr>{_cells(*head, tag="th")}</tr></thead>{body}</table>'


def _bounds(iv: Interval) -> str:
    if iv.lo is not None and iv.hi is not None:
        return f"[{_num(iv.lo)}, {_num(iv.hi)}]"
    return f"no interval: {iv.reason}" if iv.reason else "-"


def _interval_cells(iv: Interval | None) -> list[object]:
    """Value, interval, n, method and level: the columns of ``dotevals show``'s figures."""
    if iv is None:
        return ["n/a", "", 0, "", ""]
    return [_num(iv.estimate), _bounds(iv), iv.n, iv.method, format_level(iv.level)]


def _metric_table(ev: EvaluationView) -> str:
    rows = [
        [m.score, m.metric, model, *_interval_cells(iv)]
        for m in ev.metrics
        for model, iv in zip(ev.models, m.figures)
    ]
    head = ["score", "metric", "model", "value", "interval", "n", "method", "level"]
    return _table("metrics", head, rows)


def _difference_table(ev: EvaluationView) -> str:
    rows = []
    for d in ev.differences:
        result = d.comparison.result
        value, bounds, n, method, level = _interval_cells(result.diff)
        p = _num(result.p_value, 4)
        left_out = d.comparison.left_out
        rows.append([d.score, f"{d.other} - {d.baseline}", value, bounds, n, left_out])
        rows[-1] += [p, result.test, method, level]
    head = ["score", "difference", "value", "interval", "n", "left out", "p", "test"]
    return _table("differences", [*head, "method", "level"], rows)


def _plots(ev: EvaluationView) -> str:
    plots = [
        interval_plot(f"{m.score} {m.metric}", list(zip(ev.models, m.figures))) for m in ev.metrics
    ]
    if ev.differences:
        several = len({d.score for d in ev.differences}) > 1
        lines = [
            (
                (f"{d.score}: " if several else "") + f"{d.other} - {d.baseline}",
                d.comparison.result.diff,
            )
            for d in ev.differences
        ]
        plots.append(interval_plot("paired differences (forest plot)", lines, zero=True))
    return f'<div class="plots">{"".join(plots)}</div>'


def _when(timestamp: Any) -> str:
    if not isinstance(timestamp, (int, float)) or timestamp <= 0:
        return "-"
    return datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M:%S")


def _fact_row(f: RunFacts) -> list[object]:
    h = f.header or Header(f.experiment, f.evaluation)
    usage = ", ".join(f"{k} {v:g}" for k, v in f.usage.items()) or "-"
    return [
        f.model,
        f"{f.experiment} / {f.evaluation}",
        text(h.model) or "-",
        text(h.dotevals_version) or "-",
        text(h.git_commit) or "-",
        text(h.dataset_fingerprint) or "-",
        _when(h.started_at),
        f.runs,
        f.rows,
        f.errors,
        f.retries,
        f"{f.duration:.2f}s",
        "; ".join(" > ".join(map(str, limits)) for limits in f.concurrency) or "-",
        usage,
        "-" if f.cost is None else f"{f.cost:.4f}",
    ]


def _facts_table(ev: EvaluationView) -> str:
    head = [
        "model",
        "experiment / evaluation",
        "model name",
        "dotevals",
        "git commit",
        "dataset fingerprint",
        "started",
        "runs",
        "rows",
        "errors",
        "retries",
        "time",
        "concurrency (per run)",
        "usage",
        "cost",
    ]
    return _table("facts", head, [_fact_row(f) for f in ev.facts])


def _controls(ev: EvaluationView) -> str:
    options = "".join(
        f'<option value="{i}">{escape(model)}</option>' for i, model in enumerate(ev.models)
    )
    disagree = (
        '<label><input type="checkbox" class="f-disagree"> disagreements only</label>'
        if len(ev.models) > 1
        else ""
    )
    return (
        '<div class="controls">'
        '<label><input type="checkbox" class="f-errors"> errors only</label>'
        f"{disagree}"
        '<label>wrong for <select class="f-wrong"><option value="">-</option>'
        f"{options}</select></label>"
        '<input type="search" class="f-search" placeholder="search prompts, responses, errors">'
        '<span class="count"></span>'
        '<button type="button" class="prev">&lsaquo; previous</button>'
        '<span class="page"></span>'
        '<button type="button" class="next">next &rsaquo;</button>'
        "</div>"
    )


def _rows_section(ev: EvaluationView, index: int) -> str:
    heads = "".join(
        f'<th data-sort="k{i}" title="sort by verdict">{escape(model)}</th>'
        for i, model in enumerate(ev.models)
    )
    return (
        f'<section class="rows" data-eval="{index}"><h3>Rows</h3>{_controls(ev)}'
        '<table class="grid"><thead><tr><th data-sort="i">item</th>'
        f'<th data-sort="p">prompt</th>{heads}</tr></thead><tbody></tbody></table>'
        '<div class="detail" hidden></div></section>'
    )


def _evaluation(ev: EvaluationView, index: int) -> str:
    warnings = "".join(f'<p class="warning">Warning: {escape(w)}</p>' for w in ev.warnings)
    differences = f"<h3>Paired differences</h3>{_difference_table(ev)}" if ev.differences else ""
    return (
        f'<section class="evaluation" id="evaluation-{index}"><h2>{escape(ev.name)}</h2>'
        f"{warnings}<h3>Metrics</h3>{_metric_table(ev)}{differences}{_plots(ev)}"
        f"<h3>Run facts</h3>{_facts_table(ev)}{_rows_section(ev, index)}</section>"
    )


def render_html(view: ReportView) -> str:
    """The whole report page for ``view``, secrets redacted."""
    script = _asset("report.js")
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    policy = (
        f"default-src 'none'; script-src 'sha256-{digest}'; style-src 'unsafe-inline'; "
        "img-src data:"
    )
    data = {"evaluations": [{"models": ev.models, "rows": ev.rows} for ev in view.evaluations]}
    title = "dotevals report: " + ", ".join(view.experiments)
    body = (
        f"<header><h1>{escape(title)}</h1><p>{escape(view.storage)}; generated "
        f"{escape(_when(view.generated_at))} by dotevals {escape(view.dotevals_version)}</p>"
        "</header>" + "".join(_evaluation(ev, i) for i, ev in enumerate(view.evaluations))
    )
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{policy}">'
        '<link rel="icon" href="data:,">'
        f"<title>{redact(escape(title))}</title><style>{_asset('report.css')}</style></head>"
        f"<body>{redact(body)}"
        f'<script type="application/json" id="dotevals-data">{redact(_script_json(data))}</script>'
        f"<script>{script}</script></body></html>"
    )
