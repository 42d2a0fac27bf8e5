"""Self-contained HTML reports of stored experiments: ``dotevals report`` and ``--dotevals-report``.

``write_report(store, experiments, path)`` reads the experiments through the storage API,
turns them into a plain view model (:func:`build_view`) and writes one HTML file that needs
no network to be viewed.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from dotevals.pricing import Prices
from dotevals.report._html import redact, render_html
from dotevals.report._view import ReportView, build_view
from dotevals.storage import Storage, open_storage

__all__ = ["ReportView", "build_view", "redact", "render_html", "session_report", "write_report"]


def write_report(
    store: Storage,
    experiments: Sequence[str],
    path: str | os.PathLike[str],
    evaluation: str | None = None,
    prices: Prices | None = None,
) -> Path:
    """Write the report of ``experiments`` to ``path`` (folders made as needed); return it.

    ``prices`` prices the records' token usage (see :func:`build_view`).

    Raises:
        ConfigurationError: an experiment or the evaluation is not in the store.
    """
    document = render_html(build_view(store, experiments, evaluation, prices))
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    partial.write_text(document, encoding="utf-8")
    partial.replace(target)
    return target


def session_report(
    path: str | os.PathLike[str],
    runs: Sequence[tuple[str, str]],
    prices: Prices | None = None,
) -> list[Path]:
    """Write the report of a session's ``(experiment, storage URL)`` runs to ``path``.

    ``prices`` (the session's price table) prices the records' usage.

    One store gives one file at ``path``; experiments in several stores give one file per
    store, numbered (``report-1.html``, ``report-2.html``). Nothing is written without runs.
    """
    by_store: dict[str, list[str]] = {}
    for experiment, url in runs:
        names = by_store.setdefault(url, [])
        if experiment not in names:
            names.append(experiment)
    target = Path(path)
    written = []
    for n, (url, experiments) in enumerate(by_store.items(), start=1):
        where = target if len(by_store) == 1 else target.with_stem(f"{target.stem}-{n}")
        written.append(write_report(open_storage(url), experiments, where, prices=prices))
    return written
