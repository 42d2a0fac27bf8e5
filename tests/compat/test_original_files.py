"""Evaluation files written for dotevals 0.26 / 0.28, in the style of its docs, run unchanged.

Each test writes such a file into a pytester directory, runs pytest on it and checks the
outcome and the stored records (``.dotevals/<experiment>/<evaluation>.jsonl``). Models are
plain Python objects: nothing here needs a network.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dotevals import Batch, ForEach, batch, foreach
from dotevals.concurrency import (
    Adaptive,
    AsyncConcurrencyStrategy,
    AsyncSequential,
    ConcurrencyStrategy,
    Fixed,
    Sequential,
    SlidingWindow,
    SyncConcurrencyStrategy,
)
from dotevals.datasets import (
    Dataset,
    UnknownDatasetError,
    get_dataset_info,
    list_available,
    registry,
)
from dotevals.decorators import WHOLE_DATASET, get_spec, retries_to_max_retries
from dotevals.errors import ConfigurationError, PluginLoadError
from stores import read_store as stored
from stores import records

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


# -- helpers ------------------------------------------------------------------------------------


def summary(root: Path, experiment: str, evaluation: str) -> dict[str, Any]:
    """The summary line written when the evaluation finished."""
    entries = [e for e in stored(root, experiment, evaluation) if e.get("type") == "summary"]
    return entries[-1]


def values(final: dict[int, dict[str, Any]], score: int = 0) -> list[Any]:
    """The value of one score of every row, in row order."""
    return [final[i]["scores"][score]["value"] for i in sorted(final)]


@pytest.fixture(autouse=True)
def _clean_registry() -> Iterator[None]:
    """Datasets registered by a test do not leak into the next one."""
    saved = dict(registry._classes)
    yield
    registry._classes.clear()
    registry._classes.update(saved)


# -- files as the original's docs write them ------------------------------------------------------

FIRST_EVALUATION = """
from dotevals import foreach, Result
from dotevals.evaluators import exact_match

# Simple math problems dataset
math_data = [
    ("What is 2 + 3?", "5"),
    ("What is 10 - 4?", "6"),
    ("What is 3 * 2?", "6"),
]

@foreach("question,answer", math_data)
def eval_basic_math(question, answer):
    \"\"\"Test basic math problem solving.\"\"\"
    if "2 + 3" in question:
        prediction = "5"
    elif "10 - 4" in question:
        prediction = "6"
    else:
        prediction = "7"  # Wrong answer for 3 * 2

    return Result(
        exact_match(prediction, answer),
        prompt=question
    )
"""


def test_first_evaluation_of_the_tutorial(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(eval_math=FIRST_EVALUATION)
    result = pytester.runpytest("eval_math.py", "--experiment", "my_first_eval")
    result.assert_outcomes(passed=1)
    final = records(pytester.path, "my_first_eval", "eval_basic_math")
    assert values(final) == [True, True, False]
    assert all(r["error"] is None for r in final.values())
    assert final[0]["prompt"] == "What is 2 + 3?"
    assert final[0]["scores"][0]["name"] == "exact_match"
    assert final[0]["scores"][0]["metrics"] == ["accuracy"]
    metrics = summary(pytester.path, "my_first_eval", "eval_basic_math")["metrics"]
    assert metrics["exact_match"]["accuracy"]["value"] == pytest.approx(2 / 3)


SHARED_FIXTURES = """
import pytest
from dotevals import foreach
from dotevals.models import Result
from dotevals.evaluators import exact_match

CREATED = []

@pytest.fixture(scope="session")
def shared_model():
    class SharedModel:
        def __init__(self):
            self.call_count = 0

        def classify(self, text):
            self.call_count += 1
            return "positive" if "good" in text.lower() else "negative"

    CREATED.append(1)
    model = SharedModel()
    yield model
    with open("calls.txt", "w") as f:
        f.write(f"{len(CREATED)} {model.call_count}")

data_set_1 = [("good", "positive"), ("bad", "negative")]
data_set_2 = [("really good", "positive"), ("very bad", "positive")]

@foreach("text,expected", data_set_1)
def eval_dataset_1(text, expected, shared_model):
    prediction = shared_model.classify(text)
    return Result(exact_match(prediction, expected), prompt=text)

@foreach("text,expected", data_set_2)
def eval_dataset_2(text, expected, shared_model):
    prediction = shared_model.classify(text)
    return Result(exact_match(prediction, expected), prompt=text, model_response=prediction)
"""


def test_models_import_and_a_session_fixture_shared_by_two_evaluations(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(eval_shared_fixtures=SHARED_FIXTURES)
    result = pytester.runpytest("--experiment", "shared_models", "-v")
    result.assert_outcomes(passed=2)
    assert (pytester.path / "calls.txt").read_text() == "1 4"
    assert values(records(pytester.path, "shared_models", "eval_dataset_1")) == [True, True]
    second = records(pytester.path, "shared_models", "eval_dataset_2")
    assert values(second) == [True, False]
    assert second[1]["model_response"] == "negative"


CUSTOM_EVALUATOR_AND_METRIC = """
from dotevals import foreach
from dotevals.evaluators import evaluator, exact_match
from dotevals.metrics import Metric, accuracy, metric

@metric
def error_rate() -> Metric:
    \"\"\"Calculate the error rate (opposite of accuracy).\"\"\"
    def calculate(scores: list[bool]) -> float:
        if len(scores) == 0:
            return 0.0
        return 1.0 - (sum(scores) / len(scores))
    return calculate

@evaluator(metrics=accuracy())
def contains_keyword(response: str, keyword: str) -> bool:
    return keyword.lower() in response.lower()

@evaluator(metrics=[accuracy(), error_rate()])
def spelling_check(text: str, expected: str) -> bool:
    return text.lower().strip() == expected.lower().strip()

dataset = [("Hello World", "hello world", "world"), ("Helo", "hello", "hel")]

@foreach("text,expected,keyword", dataset)
def eval_spelling(text, expected, keyword):
    return spelling_check(text, expected)

@foreach("text,expected,keyword", dataset)
def eval_keyword(text, expected, keyword):
    return contains_keyword(text, keyword)

@foreach("text,expected,keyword", dataset)
def eval_renamed(text, expected, keyword):
    return exact_match(text, expected, name="math_match")
"""


def test_custom_evaluator_and_custom_metric(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(eval_custom=CUSTOM_EVALUATOR_AND_METRIC)
    result = pytester.runpytest("--experiment", "custom")
    result.assert_outcomes(passed=3)
    spelling = records(pytester.path, "custom", "eval_spelling")
    assert values(spelling) == [True, False]
    assert spelling[0]["scores"][0]["metrics"] == ["accuracy", "error_rate"]
    metadata = spelling[0]["scores"][0]["metadata"]
    assert metadata == {"text": "Hello World", "expected": "hello world"}
    metrics = summary(pytester.path, "custom", "eval_spelling")["metrics"]["spelling_check"]
    assert metrics["accuracy"]["value"] == pytest.approx(0.5)
    assert metrics["error_rate"]["value"] == pytest.approx(0.5)
    assert values(records(pytester.path, "custom", "eval_keyword")) == [True, True]
    renamed = records(pytester.path, "custom", "eval_renamed")
    assert renamed[0]["scores"][0]["name"] == "math_match"


BATCHES = """
from dotevals import batch, Batch
from dotevals.models import Result
from dotevals.evaluators import exact_match
from tenacity import AsyncRetrying, stop_after_attempt, wait_exponential

dataset = [(f"q{i}", f"Q{i}") for i in range(5)]

def log(name, questions):
    with open(f"{name}.txt", "a") as f:
        f.write(f"{len(questions)}\\n")

@batch("questions,answers", dataset, batch_size=2)
def eval_qa_batch(questions, answers):
    log("sized", questions)
    responses = [q.upper() for q in questions]
    return [Result(exact_match(r, a)) for r, a in zip(responses, answers)]

@batch("questions,answers", dataset, batch_size=None)
def eval_all_at_once(questions, answers):
    log("whole", questions)
    return [Result(exact_match(q.upper(), a), prompt=q) for q, a in zip(questions, answers)]

batch_with_retries = Batch(
    retries=AsyncRetrying(
        stop=stop_after_attempt(3),
        wait=wait_exponential(multiplier=1, min=4, max=60)
    )
)

@batch_with_retries("prompts,expected", dataset, batch_size=5)
async def eval_with_retries(prompts, expected):
    return [Result(exact_match(p.upper(), e)) for p, e in zip(prompts, expected)]
"""


def test_batch_evaluations(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(eval_batches=BATCHES)
    result = pytester.runpytest("--experiment", "batches")
    result.assert_outcomes(passed=3)
    for name in ("eval_qa_batch", "eval_all_at_once", "eval_with_retries"):
        final = records(pytester.path, "batches", name)
        assert values(final) == [True] * 5, name
    assert (pytester.path / "sized.txt").read_text().split() == ["2", "2", "1"]
    assert (pytester.path / "whole.txt").read_text().split() == ["5"]
    assert records(pytester.path, "batches", "eval_all_at_once")[4]["prompt"] == "q4"


ASYNC_WITH_FIXTURE = """
import asyncio
import pytest
from dotevals import ForEach, foreach, Result
from dotevals.evaluators import exact_match
from dotevals.concurrency import SlidingWindow

class AsyncModel:
    def __init__(self):
        self.in_flight = 0
        self.most = 0

    async def classify(self, text):
        self.in_flight += 1
        self.most = max(self.most, self.in_flight)
        await asyncio.sleep(0.02)
        self.in_flight -= 1
        return "positive" if "great" in text.lower() else "negative"

@pytest.fixture
def async_model():
    model = AsyncModel()
    yield model
    with open("most.txt", "a") as f:
        f.write(f"{model.most}\\n")

sentiment_data = [(f"great movie {i}", "positive") for i in range(6)] + [
    (f"awful movie {i}", "negative") for i in range(6)
]

@foreach("text,expected", sentiment_data)
async def eval_async_sentiment(text, expected, async_model):
    prediction = await async_model.classify(text)
    return Result(exact_match(prediction, expected), prompt=text)

foreach_concurrent = ForEach(concurrency=SlidingWindow(max_concurrency=3))

@foreach_concurrent("text,expected", sentiment_data)
async def eval_concurrent_sentiment(text, expected, async_model):
    prediction = await async_model.classify(text)
    return Result(exact_match(prediction, expected), prompt=text)
"""


def test_async_evaluation_with_a_fixture_and_a_sliding_window(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(eval_async_sentiment=ASYNC_WITH_FIXTURE)
    result = pytester.runpytest("--experiment", "async_basic", "--concurrent")
    result.assert_outcomes(passed=2)
    for name in ("eval_async_sentiment", "eval_concurrent_sentiment"):
        final = records(pytester.path, "async_basic", name)
        assert values(final) == [True] * 12, name
    most = [int(n) for n in (pytester.path / "most.txt").read_text().split()]
    assert most[0] > 1  # async rows run concurrently by default
    assert most[1] == 3  # SlidingWindow(max_concurrency=3)


CONFIGURED_FOREACH = """
from tenacity import AsyncRetrying, Retrying, stop_after_attempt, wait_fixed
from dotevals import ForEach, foreach
from dotevals.concurrency import Adaptive, Sequential, SlidingWindow
from dotevals.evaluators import exact_match
from dotevals.models import Result

ATTEMPTS = {}

def flaky(key, failures):
    ATTEMPTS[key] = ATTEMPTS.get(key, 0) + 1
    if ATTEMPTS[key] <= failures:
        raise ConnectionError(f"connection reset ({key})")

dataset = [("a", 1), ("b", 1), ("c", 2)]

foreach_retrying = ForEach(
    retries=AsyncRetrying(stop=stop_after_attempt(3), wait=wait_fixed(0)),
    concurrency=SlidingWindow(max_concurrency=2),
)

@foreach_retrying("text,failures", dataset)
async def eval_retried(text, failures):
    flaky(("retried", text), failures)
    return Result(exact_match(text, text), prompt=text)

@foreach("text,failures", dataset, retries=Retrying(stop=stop_after_attempt(1)))
def eval_not_retried(text, failures):
    if text == "c":
        flaky(("once", text), failures)
    return exact_match(text, text)

@ForEach(concurrency=Sequential(), retries=None)("text,failures", dataset)
def eval_sequential(text, failures):
    return exact_match(text, text)

foreach_adaptive = ForEach(
    concurrency=Adaptive(initial_concurrency=2, min_concurrency=1, max_concurrency=4,
                         adaptation_interval=2.0, stability_window=3)
)

@foreach_adaptive("text,failures", dataset)
async def eval_adaptive(text, failures):
    return exact_match(text, text)

foreach_limited = ForEach(max_concurrency=10)

@foreach_limited("text,failures", dataset)
async def eval_limited(text, failures):
    return exact_match(text, text)
"""


def test_foreach_instances_with_the_original_options(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(eval_configured=CONFIGURED_FOREACH)
    result = pytester.runpytest("--experiment", "configured")
    result.assert_outcomes(passed=5)
    retried = records(pytester.path, "configured", "eval_retried")
    assert all(r["error"] is None for r in retried.values())
    assert [retried[i]["attempts"] for i in range(3)] == [2, 2, 3]
    once = records(pytester.path, "configured", "eval_not_retried")
    assert once[2]["error"]["type"] == "ConnectionError"
    assert once[2]["attempts"] == 1
    assert once[0]["error"] is None
    for name in ("eval_sequential", "eval_adaptive", "eval_limited"):
        assert values(records(pytester.path, "configured", name)) == [True] * 3, name


DATASET_PLUGIN = """
from dotevals import foreach, batch
from dotevals.datasets import Dataset, registry
from dotevals.evaluators import numeric_match

class ToyMath(Dataset):
    name = "toy_math"
    splits = ["train", "test"]
    columns = ["question", "reasoning", "answer"]

    def __init__(self, split=None, **kwargs):
        if split not in self.splits:
            raise ValueError(f"unknown split {split!r}")
        self.split = split
        offset = 100 if split == "test" else 0
        self.data = [(f"{offset + i} + 1", "add one", str(offset + i + 1)) for i in range(4)]
        self.num_rows = len(self.data)

    def __iter__(self):
        for item in self.data:
            yield item

registry.register(ToyMath)

@foreach.toy_math("test")
def eval_toy(question, reasoning, answer):
    left = int(question.split(" + ")[0])
    return numeric_match(str(left + 1), answer)

@batch.toy_math("train", batch_size=3)
def eval_toy_batches(question, reasoning, answer):
    return [numeric_match(a, a) for a in answer]
"""


def test_dataset_plugin_registered_by_class(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(eval_toy=DATASET_PLUGIN)
    result = pytester.runpytest("--experiment", "toy")
    result.assert_outcomes(passed=2)
    final = records(pytester.path, "toy", "eval_toy")
    assert values(final) == [True] * 4
    assert final[0]["dataset_row"] == ["100 + 1", "add one", "101"]
    assert values(records(pytester.path, "toy", "eval_toy_batches")) == [True] * 4


ENTRY_POINT_PACKAGE = """
from dotevals.datasets import Dataset

class CapitalsDataset(Dataset):
    name = "capitals"
    splits = []
    columns = ["country", "capital"]

    def __init__(self, split=None, **kwargs):
        super().__init__(split)
        self.rows = [{"country": "France", "capital": "Paris"},
                     {"country": "Italy", "capital": "Rome"}]

    def __iter__(self):
        yield from self.rows
"""

ENTRY_POINT_EVAL = """
from dotevals import foreach
from dotevals.datasets import capitals
from dotevals.evaluators import exact_match

CAPITALS = {"France": "Paris", "Italy": "Rome"}

@foreach.capitals()
def eval_capitals(country, capital):
    return exact_match(CAPITALS[country], capital)

@foreach("country,capital", capitals())
def eval_capitals_by_class(country, capital):
    return exact_match(CAPITALS[country], capital)
"""


def install_entry_point(pytester: pytest.Pytester) -> None:
    """A distribution on sys.path registering ``capitals`` in ``dotevals.datasets``."""
    pytester.makepyfile(capitals_plugin=ENTRY_POINT_PACKAGE)
    dist = pytester.mkdir("capitals_plugin-0.1.dist-info")
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: capitals-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(
        "[dotevals.datasets]\ncapitals = capitals_plugin:CapitalsDataset\n"
    )
    pytester.syspathinsert()


def test_dataset_plugin_from_an_entry_point(pytester: pytest.Pytester) -> None:
    install_entry_point(pytester)
    pytester.makepyfile(eval_capitals=ENTRY_POINT_EVAL)
    assert "capitals" in list_available()
    assert get_dataset_info("capitals") == {
        "name": "capitals",
        "splits": [],
        "columns": ["country", "capital"],
        "num_rows": None,
    }
    result = pytester.runpytest("--experiment", "plugin")
    result.assert_outcomes(passed=2)
    for name in ("eval_capitals", "eval_capitals_by_class"):
        final = records(pytester.path, "plugin", name)
        assert values(final) == [True, True], name
        assert final[1]["dataset_row"] == {"country": "Italy", "capital": "Rome"}


SAMPLES_AND_RESUME = """
from dotevals import foreach, Result
from dotevals.evaluators import exact_match

dataset = [(str(i), str(i)) for i in range(10)]

@foreach("question,answer", dataset)
def eval_count(question, answer):
    with open("calls.txt", "a") as f:
        f.write(question + "\\n")
    return Result(exact_match(question, answer), prompt=question)
"""


def test_samples_and_experiment_resume(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(eval_count=SAMPLES_AND_RESUME)
    pytester.runpytest("--experiment", "sampled", "--samples", "3").assert_outcomes(passed=1)
    assert sorted(records(pytester.path, "sampled", "eval_count")) == [0, 1, 2]
    pytester.runpytest("--experiment", "sampled").assert_outcomes(passed=1)
    final = records(pytester.path, "sampled", "eval_count")
    assert sorted(final) == list(range(10))
    calls = (pytester.path / "calls.txt").read_text().split()
    assert calls == [str(i) for i in range(10)]  # resumed: rows 0-2 ran once
    assert all(set(r) >= {"item_id", "scores", "error"} for r in final.values())


# -- the names, one by one --------------------------------------------------------------------


def test_original_import_paths() -> None:
    import dotevals
    import dotevals.models
    import dotevals.results

    assert dotevals.models.Result is dotevals.results.Result is dotevals.Result
    assert dotevals.models.Score is dotevals.results.Score
    assert {"Result", "Score", "Record"} <= set(dotevals.models.__all__)
    result = dotevals.models.Result(dotevals.models.Score("test", 1.0, [], {}))
    assert result.scores[0].value == 1.0


def test_sliding_window_and_sequential_are_strategies() -> None:
    window = SlidingWindow(max_concurrency=20)
    assert isinstance(window, ConcurrencyStrategy)
    assert isinstance(window, Fixed)
    assert (window.limit, window.max_concurrency) == (20, 20)
    assert SlidingWindow().limit == 10
    assert AsyncSequential().limit == Sequential().limit == 1
    assert isinstance(AsyncSequential(), ConcurrencyStrategy)
    assert SyncConcurrencyStrategy is Sequential
    assert isinstance(window, AsyncConcurrencyStrategy)
    with pytest.raises(ConfigurationError):
        SlidingWindow(max_concurrency=0)


def test_adaptive_takes_the_original_arguments() -> None:
    adaptive = Adaptive(
        initial_concurrency=5,
        min_concurrency=2,
        max_concurrency=50,
        adaptation_interval=1.5,
        throughput_window=20,
        increase_threshold=0.98,
        decrease_threshold=0.9,
        stability_window=3,
        error_backoff_factor=0.7,
    )
    assert adaptive.limit == 5
    assert (adaptive.minimum, adaptive.maximum) == (2, 50)
    assert (adaptive.cooldown, adaptive.cut, adaptive.min_window) == (1.5, 0.7, 20)
    assert Adaptive(max_concurrency=4, initial_concurrency=10).limit == 4
    with pytest.raises(TypeError, match="no_such_argument"):
        Adaptive(no_such_argument=1)
    with pytest.raises(ConfigurationError):
        Adaptive(error_backoff_factor=1.5)


def test_retries_map_to_max_retries() -> None:
    from tenacity import (
        AsyncRetrying,
        Retrying,
        stop_after_attempt,
        stop_after_delay,
        stop_never,
        wait_fixed,
    )

    assert retries_to_max_retries(2) == 2
    assert retries_to_max_retries(AsyncRetrying(stop=stop_after_attempt(5))) == 4
    assert retries_to_max_retries(Retrying(stop=stop_after_attempt(1), wait=wait_fixed(1))) == 0
    either = stop_after_attempt(4) | stop_after_delay(30)
    assert retries_to_max_retries(Retrying(stop=either)) == 3
    both = stop_after_attempt(4) & stop_after_delay(30)
    assert retries_to_max_retries(Retrying(stop=both)) is None
    assert retries_to_max_retries(Retrying(stop=stop_never)) is None
    for bad in (-1, True, "3", object()):
        with pytest.raises(ConfigurationError):
            retries_to_max_retries(bad)


def test_foreach_keeps_the_original_attributes_and_options() -> None:
    from tenacity import AsyncRetrying, stop_after_attempt

    retries = AsyncRetrying(stop=stop_after_attempt(5))
    window = SlidingWindow(max_concurrency=3)
    configured = ForEach(retries=retries, concurrency=window)
    assert configured.retries is retries
    assert configured.concurrency is window

    @configured("text", [("a",)], max_retries=1)
    def eval_one(text: str) -> bool:
        return True

    spec = get_spec(eval_one)
    assert spec is not None
    assert spec.options["concurrency"] is window
    assert spec.options["max_retries"] == 1  # the decoration's option wins

    @configured("text", [("a",)], concurrency=None, retries=None)
    def eval_two(text: str) -> bool:
        return True

    spec = get_spec(eval_two)
    assert spec is not None
    assert (spec.options["concurrency"], spec.options["max_retries"]) == (window, 4)
    assert ForEach().retries is None
    with pytest.raises(AttributeError):
        _ = foreach.__special__


def test_storage_option_is_accepted_with_a_warning() -> None:
    with pytest.warns(UserWarning, match="--storage"):
        configured = ForEach(storage="json://elsewhere")

    @configured("text", [("a",)])
    def eval_one(text: str) -> bool:
        return True

    assert get_spec(eval_one) is not None


def test_batch_size_none_means_one_call() -> None:
    @batch("text", [("a",), ("b",)], batch_size=None)
    def eval_all(text: list[str]) -> list[bool]:
        return [True for _ in text]

    spec = get_spec(eval_all)
    assert spec is not None
    assert spec.batch_size == WHOLE_DATASET
    with pytest.raises(ConfigurationError):
        batch("text", [("a",)], batch_size=0)
    assert isinstance(Batch(retries=2), Batch)


def test_dataset_registry_api() -> None:
    class Squares(Dataset):
        name = "squares"
        splits = ("small",)
        columns = ("n", "square")
        num_rows = 3

        def __iter__(self) -> Iterator[tuple[int, int]]:
            return iter([(n, n * n) for n in range(3)])

    registry.register(Squares)
    registry.register(Squares)  # the same class again: nothing changes
    assert registry.get_dataset_class("squares") is Squares
    assert "squares" in registry.list_datasets()
    assert get_dataset_info("squares")["columns"] == ["n", "square"]
    dataset = Squares("small")
    assert (dataset.split, len(dataset), list(dataset)[2]) == ("small", 3, (2, 4))

    import dotevals.datasets

    assert dotevals.datasets.squares is Squares
    other = type("Squares2", (Squares,), {})
    with pytest.raises(ValueError, match="already registered"):
        registry.register(other)
    with pytest.raises(ValueError, match="no_such_dataset"):
        registry.get_dataset_class("no_such_dataset")
    with pytest.raises(PluginLoadError):
        registry.get_dataset_class("no_such_dataset")
    with pytest.raises(UnknownDatasetError):
        foreach.no_such_dataset("test")
    with pytest.raises(AttributeError):
        _ = dotevals.datasets.no_such_dataset


def test_dataset_without_num_rows_has_no_length() -> None:
    class Stream(Dataset):
        columns = ("x",)

        def __iter__(self) -> Iterator[int]:
            return iter(range(2))

    stream = Stream()
    with pytest.raises(TypeError):
        len(stream)
    assert stream
    assert list(stream) == [0, 1]
