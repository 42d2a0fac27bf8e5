"""Evaluations the Ray runner tests run (here, not in a test file, which would collect them)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

from dotevals import Result, Score, batch, foreach
from dotevals.metrics import accuracy


@foreach("x", range(60))
async def where_rows_ran(x: int, calls: Path) -> Result:
    with calls.open("a") as f:
        f.write(f"{x}\n")
    await asyncio.sleep(0.005)
    return Result(Score("even", x % 2 == 0, [accuracy()]), model_response=os.getpid())


@foreach("x", range(40))
async def dies_once(x: int, calls: Path) -> bool:
    with calls.open("a") as f:
        f.write(f"{x}\n")
    marker = calls.with_name("killed")
    if x == 25 and not marker.exists():
        marker.touch()
        import ray as ray_in_actor

        ray_in_actor.kill(ray_in_actor.get_runtime_context().current_actor)
        await asyncio.sleep(60)  # the kill lands first
    await asyncio.sleep(0.01)
    return True


@foreach("question", ["What is 2 + 2?", "Name a colour."])
async def asks_model(question: str, model: Any) -> bool:
    reply = await model.chat.completions.create(
        model=model.model, messages=[{"role": "user", "content": question}]
    )
    return bool(reply.choices[0].message.content)


@foreach("x", range(4))
async def waits_for_go(x: int, calls: Path) -> bool:
    calls.with_name("started").touch()
    while not calls.with_name("go").exists():
        await asyncio.sleep(0.01)
    return True


@batch("x", range(30), batch_size=4)
def multiples_of_three(x: list[int]) -> list[bool]:
    return [v % 3 == 0 for v in x]  # a sync batch: inline on the actor, batches regrouped there
