"""Model names and token usage recorded per row, against the local server over real HTTP."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import openai
import pytest
from click.testing import CliRunner

import dotevals
from dotevals import Result, Score, batch, foreach
from dotevals.cli import main
from dotevals.metrics import accuracy
from dotevals.pricing import Price, PriceTable
from dotevals.providers._client import make_client
from dotevals.results import Usage
from dotevals.testing import ServerProcess

from .test_fixtures import ARITHMETIC, run, store

ROWS = [("What is 2+3?",), ("What is 6*7?",), ("Tell me a story",)]


def _message(question: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": question}]


async def _usage_of(server: ServerProcess, model: str, questions: list[str]) -> Usage:
    """What the server reports for these questions, asked one by one with the plain SDK."""
    client = openai.AsyncOpenAI(base_url=server.base_url, api_key="x")
    total = Usage()
    for question in questions:
        answer = await client.chat.completions.create(model=model, messages=_message(question))
        found = Usage.from_response(answer)
        assert found is not None
        total = total + found
    await client.close()
    return total


async def test_async_rows_record_the_model_and_the_usage_of_their_calls(
    server: ServerProcess, tmp_path: Path
) -> None:
    client = make_client("dotevals-test", base_url=server.base_url, api_key="x")

    @foreach("question", ROWS)
    async def ask(question: str, client: Any) -> Score:
        answer = await client.chat.completions.create(
            model=client.model, messages=_message(question)
        )
        again = await client.chat.completions.create(
            model=client.model, messages=_message(question)
        )
        return Score("same", answer.choices[0].message.content == again.choices[0].message.content)

    results = await dotevals.run_async(
        ask, experiment="e", storage=f"json://{tmp_path}", progress=False, client=client
    )
    await client.close()
    for record, (question,) in zip(results.records, ROWS):
        assert record.model == "dotevals-test"
        one = await _usage_of(server, "dotevals-test", [question])
        assert record.usage == one + one  # both calls of the row, no other row's
    expected = await _usage_of(server, "dotevals-test", [q for (q,) in ROWS] * 2)
    assert results.report.usage == expected
    assert results.report.usage_by_model == {"dotevals-test": expected}
    stored = results.storage.load("e", "ask")
    assert stored.header is not None and stored.header.model == "dotevals-test"
    assert stored.summary is not None and stored.summary.usage == expected


async def test_a_sync_row_returning_the_sdk_response_records_its_model_and_usage(
    server: ServerProcess, tmp_path: Path
) -> None:
    sync = openai.OpenAI(base_url=server.base_url, api_key="x")

    @foreach("question", ROWS)
    def ask(question: str) -> Result:
        answer = sync.chat.completions.create(model="sync-model", messages=_message(question))
        return Result(Score("any", True, [accuracy()]), model_response=answer)

    results = dotevals.run(ask, experiment="e", storage=f"json://{tmp_path}", progress=False)
    assert [r.model for r in results] == ["sync-model"] * 3
    assert all(isinstance(r.model_response, str) for r in results)
    expected = await _usage_of(server, "sync-model", [q for (q,) in ROWS])
    assert results.report.usage_by_model == {"sync-model": expected}


async def test_a_batch_shares_its_usage_over_its_rows(
    server: ServerProcess, tmp_path: Path
) -> None:
    client = make_client("dotevals-test", base_url=server.base_url, api_key="x")

    @batch("question", ROWS, batch_size=3)
    async def ask(question: list[str], client: Any) -> list[bool]:
        for q in question:
            await client.chat.completions.create(model=client.model, messages=_message(q))
        return [True] * len(question)

    results = await dotevals.run_async(
        ask, experiment="e", storage=f"json://{tmp_path}", progress=False, client=client
    )
    await client.close()
    expected = await _usage_of(server, "dotevals-test", [q for (q,) in ROWS])
    shares = [r.usage for r in results]
    assert all(u is not None and u.total_tokens > 0 for u in shares)
    assert shares[0] + shares[1] + shares[2] == expected == results.report.usage  # type: ignore[operator]


async def test_model_given_explicitly_and_the_cost_from_a_price_table(
    server: ServerProcess, tmp_path: Path
) -> None:
    client = make_client("served-name", base_url=server.base_url, api_key="x")

    @foreach("question", ROWS, model="gpt-named")
    async def ask(question: str, client: Any) -> Result:
        await client.chat.completions.create(model=client.model, messages=_message(question))
        model = "override" if question.startswith("Tell") else None
        return Result(Score("ok", True, [accuracy()]), model=model)

    prices = PriceTable({"gpt-named": Price(input=1.0, output=2.0)})
    results = await dotevals.run_async(
        ask,
        experiment="e",
        storage=f"json://{tmp_path}",
        progress=False,
        client=client,
        prices=prices,
    )
    await client.close()
    assert [r.model for r in results] == ["gpt-named", "gpt-named", "override"]
    named = results.report.usage_by_model["gpt-named"]
    cost = (named.prompt_tokens * 1.0 + named.completion_tokens * 2.0) / 1_000_000
    assert results.report.cost_by_model == {"gpt-named": pytest.approx(cost)}  # override: no price
    assert results.report.cost == pytest.approx(cost)


def test_two_models_in_one_session_are_two_evaluations_with_usage_in_the_summary(
    pytester: pytest.Pytester, openai_env: ServerProcess
) -> None:
    pytester.makepyfile(eval_math=ARITHMETIC)
    models = ["--model", "openai:m1", "--model", "openai:m2"]
    result = run(pytester, "--experiment", "e1", *models)
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*tokens*"])
    for model in ("m1", "m2"):
        entries = store(pytester.path, "e1", f"eval_math[openai:{model}]")
        header, records = entries[0], [e for e in entries if "item_id" in e]
        assert header["model"] == model
        assert header["provider"] == "openai"  # --model PROVIDER:SPEC names it
        assert {r["model"] for r in records} == {model}
        assert all(r["usage"]["total_tokens"] > 0 for r in records)
        assert entries[-1]["usage"]["total_tokens"] == sum(
            r["usage"]["total_tokens"] for r in records
        )
    prices = pytester.path / "prices.toml"
    prices.write_text("[models.m1]\ninput = 1000000\noutput = 0\n")
    shown = CliRunner().invoke(
        main,
        [
            "show",
            "e1",
            "--storage",
            f"json://{pytester.path / '.dotevals'}",
            "--prices",
            str(prices),
        ],
    )
    assert shown.exit_code == 0, shown.output
    assert "Prompt tokens" in shown.output and "(model m2)" in shown.output
    m1 = store(pytester.path, "e1", "eval_math[openai:m1]")[-1]["usage"]["prompt_tokens"]
    assert f"{float(m1):.4f}" in shown.output  # 1 dollar per prompt token
    document = CliRunner().invoke(
        main, ["show", "e1", "--json", "--storage", f"json://{pytester.path / '.dotevals'}"]
    )
    evaluations = json.loads(document.output)["evaluations"]
    assert {e["header"]["model"] for e in evaluations} == {"m1", "m2"}
