"""Inputs the engine must not get wrong: one-shot datasets, custom metrics after a resume,
rows with unstable reprs, ``name=``, warnings as errors, throttles and concurrency ceilings."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import dotevals
from dotevals import Result, Score, foreach
from dotevals.cli import main
from dotevals.concurrency import Adaptive, Fixed, SlidingWindow, capped
from dotevals.errors import ConfigurationError, DatasetChangedError
from dotevals.metrics import accuracy
from dotevals.results import Header, Summary
from dotevals.storage.base import StoreWarning

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _stored(root: Path, experiment: str, evaluation: str) -> list[dict[str, Any]]:
    path = root / ".dotevals" / experiment / f"{evaluation}.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def _final(root: Path, experiment: str, evaluation: str) -> dict[int, dict[str, Any]]:
    return {e["item_id"]: e for e in _stored(root, experiment, evaluation) if "item_id" in e}


# -- one-shot datasets ---------------------------------------------------------------------------

GENERATOR_PARAMETRIZED = """
import pytest
from dotevals import foreach

def rows():
    yield from [(1,), (2,), (3,)]

@pytest.fixture
def m(request):
    return request.param

@pytest.mark.parametrize("m", ["a", "b"], indirect=True)
@foreach("x", rows())
def eval_gen(x, m):
    return x > 0
"""


def test_a_generator_read_by_a_first_parametrized_item_fails_the_second(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(eval_gen=GENERATOR_PARAMETRIZED)
    result = pytester.runpytest("--experiment", "gen", "-p", "no:randomly")
    result.assert_outcomes(passed=1, failed=1)
    assert "dataset of 'eval_gen[b]' is a one-shot iterator" in result.stdout.str()
    assert len(_final(pytester.path, "gen", "eval_gen[a]")) == 3


def _numbers() -> Iterator[tuple[int]]:
    yield from [(1,), (2,)]


def test_a_second_run_of_a_generator_dataset_is_refused(tmp_path: Path) -> None:
    @foreach("x", _numbers())
    def eval_once(x: int) -> bool:
        return True

    storage = f"json://{tmp_path}"
    first = dotevals.run(eval_once, experiment="one", storage=storage, progress=False)
    assert first.summary()["total"] == 2
    with pytest.raises(ConfigurationError, match=r"'eval_once' is a one-shot iterator.*__iter__"):
        dotevals.run(eval_once, experiment="two", storage=storage, progress=False)


def test_two_evaluations_sharing_one_generator_are_refused(tmp_path: Path) -> None:
    rows = _numbers()

    @foreach("x", rows)
    def eval_first(x: int) -> bool:
        return True

    @foreach("x", rows)
    def eval_second(x: int) -> bool:
        return True

    storage = f"json://{tmp_path}"
    assert dotevals.run(eval_first, storage=storage, progress=False).summary()["total"] == 2
    with pytest.raises(ConfigurationError, match=r"'eval_second' is .*another evaluation"):
        dotevals.run(eval_second, storage=storage, progress=False)


def test_opened_generators_are_not_kept_alive(tmp_path: Path) -> None:
    import gc
    import weakref

    rows = _numbers()
    alive = weakref.ref(rows)

    @foreach("x", rows)
    def eval_gone(x: int) -> bool:
        return True

    dotevals.run(eval_gone, storage=f"json://{tmp_path}", progress=False)
    del eval_gone, rows
    gc.collect()
    assert alive() is None


def test_the_spec_remembers_its_opened_iterator_and_keeps_no_registry() -> None:
    import dotevals._rows as rows
    from dotevals.decorators import get_spec

    @foreach("x", iter([(1,)]))  # a list iterator: not weakly referenceable
    def eval_flag(x: int) -> bool:
        return True

    spec = get_spec(eval_flag)
    assert spec is not None and spec.dataset_opened is False
    registered = len(rows._READ_ITERATORS)
    rows.check_reusable("eval_flag", spec)
    assert spec.dataset_opened is True
    with pytest.raises(ConfigurationError, match="one-shot iterator"):
        rows.check_reusable("eval_flag", spec)
    assert len(rows._READ_ITERATORS) == registered  # not weakly referenceable: spec only


def test_an_exhausted_generator_is_refused_on_its_first_run(tmp_path: Path) -> None:
    rows = _numbers()
    list(rows)

    @foreach("x", rows)
    def eval_late(x: int) -> bool:
        return True

    with pytest.raises(ConfigurationError, match="'eval_late' is an exhausted generator"):
        dotevals.run(eval_late, storage=f"json://{tmp_path}", progress=False)


def test_re_iterable_datasets_run_any_number_of_times(tmp_path: Path) -> None:
    class Rows:
        def __iter__(self) -> Iterator[tuple[int]]:
            return _numbers()

    @foreach("x", Rows())
    def eval_many(x: int) -> bool:
        return True

    for n in range(2):
        results = dotevals.run(eval_many, experiment=f"e{n}", storage=f"json://{tmp_path}")
        assert results.summary()["total"] == 2


# -- plain-function metrics after a resume ---------------------------------------------------------


def top(values: list[Any]) -> float:
    return float(max(values, default=0))


FAIL_ONCE: set[int] = set()


@foreach("x", [(1,), (5,), (3,)])
def top_eval(x: int) -> Score:
    if x == 5 and 5 not in FAIL_ONCE:
        FAIL_ONCE.add(5)
        raise RuntimeError("flaky")
    return Score("s", x, [top])


top_eval.__test__ = False  # run by the tests through dotevals.run, not collected


def _show_json(tmp_path: Path, experiment: str) -> Any:
    out = CliRunner().invoke(
        main, ["show", experiment, "--storage", f"json://{tmp_path}", "--json"]
    )
    assert out.exit_code == 0, out.output
    return json.loads(out.output)


def test_a_plain_function_metric_survives_a_resume(tmp_path: Path) -> None:
    storage = f"json://{tmp_path}"
    first = dotevals.run(top_eval, experiment="top", storage=storage, progress=False)
    assert first.summary()["metrics"] == {"s": {"top": 3.0}}
    second = dotevals.run(top_eval, experiment="top", storage=storage, progress=False)
    assert second.report.ran == 1
    assert second.summary()["metrics"] == {"s": {"top": 5.0}}
    third = dotevals.run(top_eval, experiment="top", storage=storage, progress=False)
    assert third.report.ran == 0
    assert third.summary()["metrics"] == {"s": {"top": 5.0}}  # kept from the last summary
    assert "top" in json.dumps(_show_json(tmp_path, "top"))
    assert "5.0" in json.dumps(_show_json(tmp_path, "top"))


# -- rows holding objects JSON cannot hold ---------------------------------------------------------


class Img:
    """An object with the default repr: its memory address differs between runs."""


KEEP: list[Img] = []  # alive, so that no new Img reuses an old one's address


class Images:
    def __init__(self, names: list[str]) -> None:
        self.names = names

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        for i, name in enumerate(self.names):
            KEEP.append(Img())
            yield (KEEP[-1], Path(name), i)


@pytest.mark.filterwarnings("ignore::dotevals.storage.base.StoreWarning")
def test_rows_with_default_reprs_resume(tmp_path: Path) -> None:
    images = Images(["a.png", "b.png"])

    @foreach("img,path,i", images)
    def eval_img(img: Img, path: Path, i: int) -> bool:
        return i == 0

    storage = f"json://{tmp_path}"
    first = dotevals.run(eval_img, experiment="img", storage=storage, progress=False)
    again = dotevals.run(eval_img, experiment="img", storage=storage, progress=False)
    assert (first.report.ran, again.report.ran) == (2, 0)
    assert " at 0x" in str(first.records[0].dataset_row[0])
    images.names = ["a.png", "c.png"]  # stable content still counts: a changed path is seen
    with pytest.raises(DatasetChangedError, match="row 1 was"):
        dotevals.run(eval_img, experiment="img", storage=storage, progress=False)


# -- name= under pytest --------------------------------------------------------------------------

RENAMED = """
import pytest
from dotevals import foreach

@pytest.fixture
def m(request):
    return request.param

@pytest.mark.parametrize("m", ["a", "b"], indirect=True)
@foreach("x", [(1,), (2,)], name="renamed")
def eval_param(x, m):
    return x == 1

@foreach("x", [(1,)], name="plain_renamed")
def eval_plain(x):
    return 0.5
"""


def test_name_option_names_the_store_and_the_score(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(eval_renamed=RENAMED)
    pytester.runpytest("--experiment", "ren").assert_outcomes(passed=3)
    folder = pytester.path / ".dotevals" / "ren"
    assert sorted(p.name for p in folder.iterdir()) == [
        "plain_renamed.jsonl",
        "renamed[a].jsonl",
        "renamed[b].jsonl",
    ]
    assert _final(pytester.path, "ren", "renamed[a]")[0]["scores"][0]["name"] == "renamed"
    assert _final(pytester.path, "ren", "plain_renamed")[0]["scores"][0]["name"] == "plain_renamed"


# -- warnings as errors -------------------------------------------------------------------------

OPAQUE_RESULT = """
from dotevals import foreach, Result, Score
from dotevals.metrics import accuracy

class Opaque:
    def __repr__(self):
        return "<opaque>"

@foreach("x", [(1,), (2,), (3,)])
def eval_opaque(x):
    return Result(Score("s", True, [accuracy()], {"thing": Opaque()}))
"""


def test_values_stored_as_repr_under_warnings_as_errors(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(eval_opaque=OPAQUE_RESULT)
    # pytest-asyncio itself warns when its loop scope is unset: an error under -W error
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    result = pytester.runpytest("-W", "error::UserWarning", "--experiment", "w")
    result.assert_outcomes(failed=1)  # the filter gets its error, at the end
    result.stdout.fnmatch_lines(["*StoreWarning*not JSON: stored as repr*"])
    final = _final(pytester.path, "w", "eval_opaque")
    assert sorted(final) == [0, 1, 2]
    assert all(r["scores"][0]["metadata"] == {"thing": "<opaque>"} for r in final.values())
    assert _stored(pytester.path, "w", "eval_opaque")[-1]["type"] == "summary"


# -- failure messages ------------------------------------------------------------------------------

MISSED_THRESHOLD = """
from dotevals import foreach

@foreach("x", [(1,), (2,)], threshold={"accuracy": 0.9})
def eval_low(x):
    return x == 1
"""


def test_a_failure_message_is_shown_once(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(eval_low=MISSED_THRESHOLD)
    result = pytester.runpytest("--experiment", "low", "-rN")
    result.assert_outcomes(failed=1)
    text = result.stdout.str()
    assert "During handling of the above exception" not in text
    assert text.count("accuracy = 0.5000 is below the threshold 0.9") == 1


# -- the logs folder -----------------------------------------------------------------------------


def test_an_experiment_named_logs_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(eval_low=MISSED_THRESHOLD)
    result = pytester.runpytest("--experiment", "logs")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*experiment name 'logs' is reserved*model-server logs*"])


# -- throttles and ceilings ------------------------------------------------------------------------


class Throttled(Exception):
    status_code = 429


class Counting:
    """A strategy of the user's own: counts what the engine tells it."""

    def __init__(self, limit: int = 4) -> None:
        self._limit = limit
        self.throttles = 0
        self.errors = 0

    @property
    def limit(self) -> int:
        return self._limit

    def on_success(self, latency: float) -> None:
        pass

    def on_throttle(self) -> None:
        self.throttles += 1

    def on_error(self) -> None:
        self.errors += 1

    def history(self) -> list[tuple[float, int]]:
        return [(0.0, self._limit)]


def test_throttles_reach_the_strategy_without_retries(tmp_path: Path) -> None:
    strategy = Counting()

    @foreach("x", [(i,) for i in range(3)], concurrency=strategy, max_retries=0)
    async def eval_429(x: int) -> bool:
        raise Throttled("rate limited")

    results = dotevals.run(eval_429, storage=f"json://{tmp_path}", progress=False)
    assert results.summary()["errors"] == 3
    assert (strategy.throttles, strategy.errors) == (3, 0)


def test_throttles_cut_adaptive_concurrency_without_retries(tmp_path: Path) -> None:
    @foreach("x", [(i,) for i in range(8)], concurrency=Adaptive(), max_retries=0)
    async def eval_busy(x: int) -> bool:
        raise Throttled("rate limited")

    results = dotevals.run(eval_busy, storage=f"json://{tmp_path}", progress=False)
    limits = [limit for _, limit in results.report.concurrency]
    assert limits[0] == 16
    assert min(limits) < 16


@pytest.mark.parametrize("strategy", [Fixed(1000), Adaptive(), Adaptive(initial=64, maximum=500)])
def test_strategy_objects_are_capped_by_max_concurrency(tmp_path: Path, strategy: Any) -> None:
    flight = {"now": 0, "most": 0}

    @foreach("x", [(i,) for i in range(30)], concurrency=strategy, max_concurrency=3)
    async def eval_wide(x: int) -> bool:
        flight["now"] += 1
        flight["most"] = max(flight["most"], flight["now"])
        for _ in range(3):
            await asyncio.sleep(0)
        flight["now"] -= 1
        return True

    results = dotevals.run(eval_wide, storage=f"json://{tmp_path}", progress=False)
    assert results.summary()["total"] == 30
    assert flight["most"] == 3
    assert max(limit for _, limit in results.report.concurrency) <= 3


def test_capped_keeps_small_fixed_windows_and_wraps_the_rest() -> None:
    window = SlidingWindow(max_concurrency=3)
    assert capped(window, 256) is window
    assert window.limit == window.max_concurrency == 3
    assert capped(SlidingWindow(max_concurrency=20), 8).limit == 8
    wrapped = capped(Counting(limit=50), 10)
    assert (wrapped.limit, wrapped.history()) == (10, [(0.0, 10)])
    wrapped.on_throttle()
    adaptive = Adaptive(initial=64, maximum=500)
    narrowed = capped(adaptive, 32)
    assert isinstance(narrowed, Adaptive)
    assert narrowed is not adaptive  # the user's object is copied, never changed
    assert (narrowed.maximum, narrowed.limit) == (32, 32)
    assert (adaptive.maximum, adaptive.limit) == (500, 64)
    assert capped(adaptive, 500) is adaptive  # within the ceiling: used as it is


def test_one_adaptive_shared_by_evaluations_keeps_each_ceiling(tmp_path: Path) -> None:
    shared = Adaptive()
    each = dotevals.ForEach(concurrency=shared)
    most: dict[str, int] = {}

    def evaluation(name: str, ceiling: int) -> Any:
        flight = {"now": 0}

        @each("x", [(i,) for i in range(40)], max_concurrency=ceiling, name=name)
        async def eval_shared(x: int) -> bool:
            flight["now"] += 1
            most[name] = max(most.get(name, 0), flight["now"])
            for _ in range(3):
                await asyncio.sleep(0)
            flight["now"] -= 1
            return True

        return eval_shared

    storage = f"json://{tmp_path}"
    narrow = dotevals.run(evaluation("narrow", 3), storage=storage, progress=False)
    wide = dotevals.run(evaluation("wide", 12), storage=storage, progress=False)
    assert most == {"narrow": 3, "wide": 12}
    assert max(limit for _, limit in narrow.report.concurrency) == 3
    assert max(limit for _, limit in wide.report.concurrency) == 12
    assert (shared.maximum, shared.limit, shared.history()) == (256, 16, [(0.0, 16)])


class _SummaryFails:
    """A store whose writer's ``write_summary`` raises a warning a filter made an error."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.closed = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def open_writer(self, experiment: str, evaluation: str, header: Header) -> Any:
        writer = self.inner.open_writer(experiment, evaluation, header)
        store = self

        class Writer:
            def append(self, record: Any) -> None:
                writer.append(record)

            def write_summary(self, summary: Summary) -> None:
                raise StoreWarning("summary value stored as repr")

            def close(self) -> None:
                store.closed += 1
                writer.close()

        return Writer()


class _Finishes:
    def __init__(self) -> None:
        self.finished = 0

    def start(self, name: str, total: int | None, done: int) -> None:
        pass

    def update(self, done: int, errors: int, metrics: Any) -> None:
        pass

    def finish(self) -> None:
        self.finished += 1


def test_a_failing_summary_still_closes_the_store_and_the_display(tmp_path: Path) -> None:
    from dotevals._engine import RunOptions, evaluate
    from dotevals.decorators import get_spec
    from dotevals.storage import open_storage

    @foreach("x", [(1,), (2,)])
    def eval_summary(x: int) -> bool:
        return True

    spec = get_spec(eval_summary)
    assert spec is not None
    store = _SummaryFails(open_storage(f"json://{tmp_path / '.dotevals'}"))
    progress = _Finishes()
    options = RunOptions(experiment="s", storage=store, progress=progress)  # type: ignore[arg-type]
    with pytest.raises(StoreWarning, match="summary value stored as repr"):
        asyncio.run(evaluate(spec, {}, options))
    assert (store.closed, progress.finished) == (1, 1)
    assert len(_final(tmp_path, "s", "eval_summary")) == 2


def test_an_accuracy_score_still_works_with_the_fixes(tmp_path: Path) -> None:
    @foreach("x", [(1,), (2,)])
    def eval_acc(x: int) -> Result:
        return Result(Score("s", x == 1, [accuracy()]))

    results = dotevals.run(eval_acc, storage=f"json://{tmp_path}", progress=False)
    assert results.summary()["metrics"] == {"s": {"accuracy": 0.5}}


def test_garbage_records_are_skipped_on_resume_and_by_show(tmp_path: Path) -> None:
    @foreach("x", [(1,), (2,)])
    def eval_garbage(x: int) -> bool:
        return True

    storage = f"json://{tmp_path}"
    dotevals.run(eval_garbage, experiment="g", storage=storage, progress=False)
    path = tmp_path / "g" / "eval_garbage.jsonl"
    with path.open("a") as f:
        f.write('{"item_id": "zz"}\n{"type": "record"}\n')
    with pytest.warns(StoreWarning) as caught:
        again = dotevals.run(eval_garbage, experiment="g", storage=storage, progress=False)
    assert again.report.ran == 0
    messages = [str(w.message) for w in caught]
    assert f"{path}:5: unreadable line skipped" in messages[0]
    assert f"{path}:6: unreadable line skipped" in messages[1]
    out = CliRunner().invoke(main, ["show", "g", "--storage", storage])
    assert out.exit_code == 0, out.output
    assert f"warning: {path}:6: unreadable line skipped" in out.output
