"""Tests of the evaluator decorator and the built-in evaluators."""

from __future__ import annotations

import inspect
import json
import re
from typing import Any

import pytest

from dotevals import evaluators
from dotevals.evaluators import (
    ast_evaluation,
    contains,
    evaluator,
    exact_match,
    numeric_match,
    regex_match,
    valid_json,
)
from dotevals.metrics import accuracy, mean
from dotevals.results import Score

BUILT_INS = [exact_match, numeric_match, valid_json, ast_evaluation, contains, regex_match]
CALLS: list[tuple[Any, tuple[Any, ...]]] = [
    (exact_match, ("a", "a")),
    (numeric_match, ("1", 1)),
    (valid_json, ("{}",)),
    (ast_evaluation, ("x", "x")),
    (contains, ("abc", "b")),
    (regex_match, ("abc", "b")),
]


# --- the decorator ----------------------------------------------------------------------------


@evaluator(metrics=accuracy())
def longer_than(text: str, size: int = 3, *extra: Any, strict: bool = True, **options: Any) -> bool:
    """Whether the text is longer than ``size``."""
    return len(text) > size


def test_all_lists_the_public_names() -> None:
    assert sorted(evaluators.__all__) == sorted(
        [
            "evaluator",
            "exact_match",
            "numeric_match",
            "valid_json",
            "ast_evaluation",
            "contains",
            "regex_match",
        ]
    )


def test_evaluator_returns_a_score_named_after_the_function() -> None:
    score = longer_than("hello")
    assert isinstance(score, Score)
    assert score.name == "longer_than"
    assert score.value is True


def test_metadata_binds_arguments_to_names_with_defaults() -> None:
    assert longer_than("hello").metadata == {
        "text": "hello",
        "size": 3,
        "extra": (),
        "strict": True,
        "options": {},
    }
    score = longer_than("hi", 1, "x", strict=False, flag=2)
    assert score.metadata == {
        "text": "hi",
        "size": 1,
        "extra": ("x",),
        "strict": False,
        "options": {"flag": 2},
    }


def test_metadata_keeps_arguments_as_given() -> None:
    payload = {"a": [1, 2]}
    score = exact_match(payload, payload)
    assert score.metadata["result"] is payload
    assert json.loads(json.dumps(score.to_dict()))["metadata"] == {
        "result": payload,
        "expected": payload,
    }


def test_name_keyword_renames_and_is_not_passed_or_stored() -> None:
    seen: list[dict[str, Any]] = []

    @evaluator(metrics=accuracy())
    def spy(result: str, **kwargs: Any) -> bool:
        seen.append(kwargs)
        return True

    score = spy("x", name="renamed")
    assert score.name == "renamed"
    assert seen == [{}]
    assert score.metadata == {"result": "x", "kwargs": {}}
    assert exact_match("a", "b", name="em").name == "em"
    assert "name" not in exact_match("a", "b", name="em").metadata


def test_a_parameter_called_name_still_receives_it() -> None:
    @evaluator(metrics=accuracy())
    def greets(result: str, name: str) -> bool:
        return name in result

    score = greets("hello bob", name="bob")
    assert score.value is True
    assert score.name == "greets"
    assert score.metadata == {"result": "hello bob", "name": "bob"}


def test_wrong_arguments_raise_type_error_without_calling() -> None:
    calls: list[int] = []

    @evaluator(metrics=accuracy())
    def one(result: str) -> bool:
        calls.append(1)
        return True

    with pytest.raises(TypeError):
        one("a", "b")  # type: ignore[call-arg]
    assert calls == []


def test_wraps_keeps_name_doc_and_signature() -> None:
    assert longer_than.__name__ == "longer_than"
    assert longer_than.__doc__ == "Whether the text is longer than ``size``."
    assert list(inspect.signature(longer_than).parameters) == [
        "text",
        "size",
        "extra",
        "strict",
        "options",
    ]
    assert exact_match.__wrapped__.__name__ == "exact_match"  # type: ignore[attr-defined]


def test_metrics_may_be_one_metric_or_a_list() -> None:
    acc, avg = accuracy(), mean()

    @evaluator(metrics=acc)
    def single(x: int) -> int:
        return x

    @evaluator(metrics=[acc, avg])
    def several(x: int) -> int:
        return x

    assert single(1).metrics == [acc]
    assert several(2).metrics == [acc, avg]
    assert several(2).to_dict()["metrics"] == ["accuracy", "mean"]


def test_each_score_gets_its_own_metrics_list() -> None:
    first, second = exact_match(1, 1), exact_match(1, 1)
    first.metrics.append(mean())
    assert len(second.metrics) == 1


def test_value_is_the_plain_return_value() -> None:
    @evaluator(metrics=mean())
    def length(text: str) -> int:
        return len(text)

    assert length("abcd").value == 4


@pytest.mark.parametrize(("func", "args"), CALLS)
def test_built_ins_score_with_accuracy(func: Any, args: tuple[Any, ...]) -> None:
    score = func(*args)
    assert isinstance(score, Score)
    assert score.name == func.__name__
    assert score.value is True
    names = [m.__name__ for m in score.metrics]
    assert names == ["accuracy"]
    assert all(callable(m) for m in score.metrics)
    assert score.metrics[0]([True, False]) == 0.5


@pytest.mark.parametrize("func", BUILT_INS)
def test_built_ins_have_docstrings(func: Any) -> None:
    assert func.__doc__ and "Args:" in func.__doc__


# --- exact_match ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("result", "expected", "value"),
    [
        ("Paris", "Paris", True),
        ("Paris", "paris", False),
        ("Paris ", "Paris", False),
        (42, 42, True),
        (42, "42", False),
        (None, None, True),
        ([1, 2], [1, 2], True),
    ],
)
def test_exact_match(result: Any, expected: Any, value: bool) -> None:
    score = exact_match(result, expected)
    assert score.value is value
    assert score.metadata == {"result": result, "expected": expected}


# --- numeric_match ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        ("1,234", "1234"),
        ("1234", 1234),
        ("1 234", 1234),
        ("1,234", 1234.0),
        (" 42\n", "42"),
        ("1e3", 1000),
        ("1E-3", 0.001),
        ("-1,000.50", -1000.5),
        ("+7", 7),
        (".5", 0.5),
        ("3.", 3),
        (12, 12.0),
        (0.1 + 0.2, 0.3),
        ("0.30000000001", 0.3),
        (10**30, 10**30),
        ("9" * 5000, "9" * 5000),
    ],
)
def test_numeric_match_true(result: Any, expected: Any) -> None:
    assert numeric_match(result, expected).value is True


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        (None, 1),
        (1, None),
        (None, None),
        ("", ""),
        ("   ", 0),
        ("- 42", -42),
        ("abc", "abc"),
        ("1,2,3.4.5", "123.45"),
        ("42abc", 42),
        ("1,,234", 1234),
        (",1234", 1234),
        ("nan", "nan"),
        ("1.1", 1.2),
        (10**30 + 1, 10**30),
        (True, 1),
        ([1], 1),
        (10**400, 1e300),
    ],
)
def test_numeric_match_false(result: Any, expected: Any) -> None:
    assert numeric_match(result, expected).value is False


def test_numeric_match_tolerance_is_tiny() -> None:
    assert numeric_match(1.0, 1.0 + 1e-12).value is True
    assert numeric_match(1.0, 1.0 + 1e-6).value is False
    assert numeric_match(0.0, 1e-10).value is True


# --- valid_json -------------------------------------------------------------------------------

SCHEMA = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
    "required": ["name"],
}


@pytest.mark.parametrize(
    ("result", "value"),
    [
        ('{"a": 1}', True),
        ("[1, 2]", True),
        ('"text"', True),
        ("3", True),
        ("null", True),
        ({"a": 1}, True),
        ([1, 2], True),
        (None, False),
        ("", False),
        ("{'a': 1}", False),
        ('{"a": 1', False),
        ("NaN", False),
        ('{"x": Infinity}', False),
        (42, False),
        (b"{}", False),
        ("[" * 100_000 + "]" * 100_000, False),
    ],
)
def test_valid_json_without_schema(result: Any, value: bool) -> None:
    assert valid_json(result).value is value


@pytest.mark.parametrize(
    ("result", "value"),
    [
        ('{"name": "Ann", "age": 3}', True),
        ({"name": "Ann"}, True),
        ('{"age": 3}', False),
        ('{"name": "Ann", "age": "3"}', False),
        ("[]", False),
        ("not json", False),
        (None, False),
    ],
)
def test_valid_json_with_schema(result: Any, value: bool) -> None:
    score = valid_json(result, SCHEMA)
    assert score.value is value
    assert score.metadata == {"result": result, "schema": SCHEMA}


def test_valid_json_with_invalid_schema_is_false() -> None:
    assert valid_json('{"a": 1}', {"type": 12}).value is False
    assert valid_json('{"a": 1}', {"minLength": -1}).value is False


def test_valid_json_metadata_has_default_schema() -> None:
    assert valid_json("{}").metadata == {"result": "{}", "schema": None}


# --- ast_evaluation ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        ("x+1", "x + 1"),
        ("(x + 1)", "x + 1"),
        ("f(a, b)  # call", "f(a,b)"),
        ("def f(x):\n    return x*2\n", "def f(x):\n  return (x * 2)"),
        ("    y = 1\n    z = 2\n", "y = 1\nz = 2"),
        ("'a'", '"a"'),
    ],
)
def test_ast_evaluation_equal(result: str, expected: str) -> None:
    assert ast_evaluation(result, expected).value is True


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        ("x + 1", "x + 2"),
        ("x + 1", "1 + x"),
        ("a", "b"),
        ("def f(:", "def f(:"),
        ("x +", "x +"),
        (None, "x"),
        ("x", None),
        (None, None),
        ("a\0b", "a\0b"),
        (12, 12),
    ],
)
def test_ast_evaluation_not_equal(result: Any, expected: Any) -> None:
    assert ast_evaluation(result, expected).value is False


# --- contains ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("result", "expected", "kwargs", "value"),
    [
        ("The answer is Paris.", "Paris", {}, True),
        ("The answer is Paris.", "paris", {}, False),
        ("The answer is Paris.", "paris", {"case_sensitive": False}, True),
        ("STRASSE", "straße", {"case_sensitive": False}, True),
        ("abc", "", {}, True),
        ("abc", "abcd", {}, False),
        (None, "a", {}, False),
        ("abc", None, {}, False),
        (12345, 234, {}, True),
    ],
)
def test_contains(result: Any, expected: Any, kwargs: dict[str, Any], value: bool) -> None:
    score = contains(result, expected, **kwargs)
    assert score.value is value
    assert score.metadata["case_sensitive"] is kwargs.get("case_sensitive", True)


# --- regex_match ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("result", "pattern", "flags", "value"),
    [
        ("answer: 42", r"\d+", 0, True),
        ("answer: 42", r"^\d+$", 0, False),
        ("ANSWER", "answer", 0, False),
        ("ANSWER", "answer", re.IGNORECASE, True),
        ("a\nb", "^b$", re.MULTILINE, True),
        (None, ".*", 0, False),
        (42, "4", 0, True),
        ("abc", re.compile("b+"), 0, True),
    ],
)
def test_regex_match(result: Any, pattern: Any, flags: int, value: bool) -> None:
    assert regex_match(result, pattern, flags).value is value


def test_regex_match_metadata() -> None:
    assert regex_match("x", "x").metadata == {"result": "x", "pattern": "x", "flags": 0}


@pytest.mark.parametrize("result", ["text", None])
def test_regex_match_invalid_pattern_raises_naming_it(result: Any) -> None:
    with pytest.raises(ValueError, match=re.escape("'(unclosed'")):
        regex_match(result, "(unclosed")


# -- name=None, the fast binding, the cached validator ----------------------------------------


@pytest.mark.parametrize(("func", "args"), CALLS)
def test_name_none_keeps_the_default_name(func: Any, args: tuple[Any, ...]) -> None:
    assert func(*args, name=None).name == func.__name__
    assert "name" not in func(*args, name=None).metadata


def _plain(result: Any, expected: Any = "e", flags: int = 0) -> bool:
    return True


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [
        (("r", "x", 1), {}),
        (("r",), {}),
        (("r", "x"), {"flags": 2}),
        ((), {"result": "r", "flags": 3}),
        (("r",), {"flags": 3, "expected": "y"}),
    ],
)
def test_metadata_of_plain_parameters_matches_signature_bind(
    args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    bound = inspect.signature(_plain).bind(*args, **kwargs)
    bound.apply_defaults()
    score = evaluator(metrics=accuracy())(_plain)(*args, **kwargs)
    assert score.metadata == dict(bound.arguments)
    assert list(score.metadata) == ["result", "expected", "flags"]  # parameter order


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        ((), {}, "missing a required argument: 'result'"),
        (("r",), {"other": 1}, "unexpected keyword argument 'other'"),
        (("r",), {"result": "again"}, "multiple values for argument 'result'"),
        (("r", "x", 1, 2), {}, "too many positional arguments"),
    ],
)
def test_calls_that_do_not_fit_get_signature_bind_errors(
    args: tuple[Any, ...], kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(TypeError, match=re.escape(message)):
        evaluator(metrics=accuracy())(_plain)(*args, **kwargs)


def test_valid_json_builds_one_validator_per_schema(monkeypatch: pytest.MonkeyPatch) -> None:
    import jsonschema.validators

    built: list[Any] = []
    real = jsonschema.validators.validator_for

    def counting(schema: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(schema, dict) and "only_in_this_test" in str(schema):
            built.append(schema)  # not jsonschema's own look-ups of its meta-schemas
        return real(schema, *args, **kwargs)

    monkeypatch.setattr(jsonschema.validators, "validator_for", counting)
    schema = {"type": "object", "required": ["only_in_this_test"]}
    results = [valid_json('{"only_in_this_test": 1}', dict(schema)).value for _ in range(50)]
    assert results == [True] * 50
    assert len(built) == 1
    schema["required"] = ["changed", "only_in_this_test"]  # changed: its own validator
    assert valid_json('{"only_in_this_test": 1}', schema).value is False
    assert len(built) == 2


def test_valid_json_with_a_schema_json_cannot_hold_still_validates() -> None:
    schema = {"type": "object", "x-note": {1, 2}}  # a set: not JSON, not cached
    assert valid_json("{}", schema).value is True
