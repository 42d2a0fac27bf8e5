"""``dotevals power``: items needed for a paired and an unpaired comparison."""

from __future__ import annotations

import json
import math

from click.testing import CliRunner
from scipy import stats as sp

from dotevals.cli import main


def power(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["power", *args])
    return result.exit_code, result.output


def test_power_prints_paired_and_unpaired_sizes() -> None:
    code, output = power("--diff", "0.03", "--baseline", "0.7", "--correlation", "0.5")
    assert code == 0, output
    z = sp.norm.ppf(0.975) + sp.norm.ppf(0.8)
    va, vb = 0.21, 0.73 * 0.27
    unpaired = math.ceil(z * z * (va + vb) / 0.03**2)
    paired = math.ceil(z * z * (va + vb - math.sqrt(va * vb)) / 0.03**2)
    assert "to detect a difference of 0.03 from accuracy 0.7" in output
    assert f"paired (both models on the same items, correlation 0.5): {paired} items" in output
    assert f"unpaired (separate items per model): {unpaired} items per model" in output


def test_power_json_with_clusters_and_power() -> None:
    code, output = power(
        "--diff", "0.05", "--cluster-size", "10", "--icc", "0.3", "--power", "0.9", "--json"
    )
    assert code == 0, output
    sizes = json.loads(output)
    assert sizes["clusters_paired"] == math.ceil(sizes["paired"] / 10)
    _, plain = power("--diff", "0.05", "--power", "0.9", "--json")
    assert sizes["unpaired"] > 3.6 * json.loads(plain)["unpaired"]  # design effect 3.7


def test_power_refuses_impossible_inputs_with_the_reason() -> None:
    code, output = power("--diff", "0.4", "--baseline", "0.8")
    assert code == 2 and "accuracies 0.8 and 1.2" in output
    code, output = power("--diff", "0.1", "--baseline", "0.8", "--sd", "0.2")
    assert code == 2 and "not both" in output
    code, output = power("--diff", "0.1", "--power", "1.2")
    assert code == 2 and "--power" in output
