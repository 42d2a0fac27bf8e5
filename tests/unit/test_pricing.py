"""Price tables the user supplies: cost per model, and malformed tables named precisely."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from dotevals.errors import ConfigurationError
from dotevals.pricing import Price, load_prices
from dotevals.results import Usage

TABLE = """
# dollars per million tokens
[models."gpt-4o-mini"]
input = 0.15
output = 0.60
cached_input = 0.075

[models.local]
input = 0
output = 0
"""


def _table(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "prices.toml"
    path.write_text(text)
    return path


def test_a_table_prices_known_models_and_leaves_others_unpriced(tmp_path: Path) -> None:
    table = load_prices(_table(tmp_path, TABLE))
    assert table.prices["gpt-4o-mini"] == Price(0.15, 0.60, 0.075)
    usage = Usage(
        prompt_tokens=1_000_000, completion_tokens=500_000, total_tokens=0, cached_tokens=400_000
    )
    assert table.cost("gpt-4o-mini", usage) == pytest.approx(0.6 * 0.15 + 0.4 * 0.075 + 0.5 * 0.6)
    assert table.cost("local", usage) == 0.0
    assert table.cost("unknown-model", usage) is None
    assert table.cost(None, usage) is None
    assert table.cost("gpt-4o-mini", None) is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '[models.a]\ninput = 1\noutput = "cheap"\n',
            r"prices\.toml:3: models\.'a'\.output 'cheap' is not a price",
        ),
        ("[models.a]\ninput = 1\n", r"prices\.toml:1: models\.'a' has no output = price"),
        (
            "[models.a]\ninput = 1\noutput = 2\nouptut = 3\n",
            r"prices\.toml:4: models\.'a'\.ouptut unknown key",
        ),
        (
            "[models.a]\ninput = -1\noutput = 2\n",
            r"prices\.toml:2: models\.'a'\.input -1 is not a price",
        ),
        ("[models.a\ninput = 1\n", r"prices\.toml: not valid TOML: .*line 1"),
        ("input = 1\n", r'prices\.toml: no \[models\."NAME"\] tables'),
    ],
)
def test_a_malformed_table_names_the_file_line_and_key(
    tmp_path: Path, text: str, message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message):
        load_prices(_table(tmp_path, text))


def test_a_missing_table_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"price table '.*nope\.toml': cannot read"):
        load_prices(tmp_path / "nope.toml")


def test_genai_prices_prices_the_models_it_knows() -> None:
    genai_prices = pytest.importorskip("genai_prices")
    prices = load_prices("genai-prices")
    usage = Usage(
        prompt_tokens=2_000, completion_tokens=500, total_tokens=2_500, cached_tokens=1_000
    )
    expected = genai_prices.calc_price(
        genai_prices.Usage(input_tokens=2_000, output_tokens=500, cache_read_tokens=1_000),
        model_ref="gpt-4o-mini",
    )
    assert prices.cost("gpt-4o-mini", usage) == pytest.approx(float(expected.total_price))
    assert prices.cost("dotevals-test-no-such-model", usage) is None
    assert prices.costs({"gpt-4o-mini": usage, "nope-model-x": usage}).keys() == {"gpt-4o-mini"}


def test_genai_prices_missing_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "genai_prices", None)  # as if it were not installed
    with pytest.raises(ConfigurationError, match=r'pip install "dotevals\[prices\]"'):
        load_prices("genai-prices")
