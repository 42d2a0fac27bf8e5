"""The dotevals demo: the "Model Providers API" page's style, against the local model server.

The ``local_provider`` fixture comes with dotevals (entry point ``local``); it starts the
bundled OpenAI-compatible server as a real subprocess, shares it with every evaluation of the
session and stops it at the end.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from dotevals import Result, foreach
from dotevals.evaluators import exact_match, numeric_match

arithmetic = [(f"What is {a} + {b}?", str(a + b)) for a in range(5, 30, 3) for b in (2, 7, 11)]
capitals = [
    ("What is the capital of France?", "Paris"),
    ("What is the capital of Japan?", "Tokyo"),
    ("What is the capital of Australia?", "Canberra"),
    ("What is the capital of Italy?", "Rome"),
    ("What is the capital of Canada?", "Ottawa"),
]


@pytest.fixture(scope="session")
async def model(local_provider: Any) -> AsyncIterator[Any]:
    """The local model: one server for every evaluation, stopped at the end of the session."""
    handle = await local_provider.setup("dotevals-test")
    yield handle.model
    await handle.teardown()


async def ask(model: Any, question: str) -> str:
    response = await model.chat.completions.create(
        model=model.model, messages=[{"role": "user", "content": question}]
    )
    return str(response.choices[0].message.content)


@foreach("question,answer", arithmetic)
async def eval_arithmetic(question: str, answer: str, model: Any) -> Result:
    """Sums: the local model gets a few wrong on purpose."""
    reply = await ask(model, question)
    return Result(numeric_match(reply, answer), prompt=question, model_response=reply)


@foreach("question,answer", capitals)
async def eval_capitals(question: str, answer: str, model: Any) -> Result:
    """Capitals, checked with exact match."""
    reply = await ask(model, question)
    return Result(exact_match(reply, answer), prompt=question, model_response=reply)
