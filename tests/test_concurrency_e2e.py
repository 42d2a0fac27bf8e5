"""End to end: the default run finds the knee of a real server at capacity and stores it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import dotevals
from dotevals.providers._client import make_client
from dotevals.testing import ServerProcess

ROWS = [(f"What is {a} + 1?", str(a + 1)) for a in range(240)]


async def test_a_server_at_capacity_brings_the_limit_back_down(tmp_path: Path) -> None:
    @dotevals.foreach("prompt,expected", ROWS)
    async def eval_sums(prompt: str, expected: str, client: Any) -> bool:
        reply = await client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": prompt}]
        )
        return bool(reply.choices[0].message.content == expected)

    # 4 requests served at once, 50 ms each: beyond 4 in flight only the queue grows, so the
    # start (16) already queues and doubling it doubles the latency and nothing else
    with ServerProcess(latency=0.05, extra_args=["--capacity", "4"]) as server:
        client = make_client("m", base_url=server.base_url, api_key="x")
        try:
            results = await dotevals.run_async(
                eval_sums, experiment="knee", storage=f"json://{tmp_path}", client=client
            )
        finally:
            await client.close()
        served_at_once = server.stats()["max_serving"]
    assert results.summary()["errors"] == 0
    limits = [limit for _, limit in results.report.concurrency]
    assert limits[0] == 16
    assert limits[-1] < max(limits), limits  # it grew, then came back down
    assert served_at_once == 4
    lines = (tmp_path / "knee" / "eval_sums.jsonl").read_text().splitlines()
    summary = json.loads(lines[-1])
    assert summary["type"] == "summary"
    assert [limit for _, limit in summary["concurrency"]] == limits  # the history is stored
