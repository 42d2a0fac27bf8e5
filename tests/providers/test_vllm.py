"""VLLMProvider: the real code path, with the dotevals test server standing in for vLLM."""

from __future__ import annotations

import importlib.util
import os
import socket
import sys
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

import dotevals
from dotevals.errors import ServerStartError
from dotevals.providers import ModelHandle, VLLMProvider
from dotevals.providers.server import LocalServerProvider, pick_free_port

SRC = str(Path(dotevals.__file__).resolve().parent.parent)
QUESTION = [{"role": "user", "content": "What is 2+3?"}]


def stand_in(tmp_path: Path, **options: Any) -> VLLMProvider:
    """A VLLMProvider that runs ``python -m dotevals.testing`` instead of vLLM's server."""
    env = {"PYTHONPATH": os.pathsep.join([SRC, os.environ.get("PYTHONPATH", "")])}
    return VLLMProvider(
        module="dotevals.testing", log_dir=tmp_path / "logs", stop_grace=1.0, env=env, **options
    )


def test_defaults_match_the_entry_point() -> None:
    provider = VLLMProvider()
    assert isinstance(provider, LocalServerProvider)
    assert provider.base_port == 8000 and provider.name == "vllm"
    assert provider.module == "vllm.entrypoints.openai.api_server"
    assert provider.health_path == "/v1/models" and provider.host == "127.0.0.1"


def test_ports_come_from_base_port_up() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        base = busy.getsockname()[1]
        provider = VLLMProvider(base_port=base)
        first, second = provider.choose_port(), provider.choose_port()
    assert base < first < second


async def test_serves_with_vllm_flags(tmp_path: Path) -> None:
    base = pick_free_port()
    provider = stand_in(tmp_path, base_port=base, dtype="float16", tensor_parallel_size=1)
    handle = await provider.setup("dotevals-test", max_model_len=2048, dtype="bfloat16")
    client = handle.model
    info = provider.server_info(handle.resource_id)
    reply = await client.chat.completions.create(model=client.model, messages=QUESTION)
    assert reply.choices[0].message.content == "5"
    assert info.port > base  # base itself was handed out already
    expected = [
        *(sys.executable, "-m", "dotevals.testing", "--model", "dotevals-test"),
        *("--port", str(info.port), "--host", "127.0.0.1"),
        *("--dtype", "bfloat16", "--tensor-parallel-size", "1", "--max-model-len", "2048"),
    ]
    process = psutil.Process(info.pid)
    assert process.cmdline() == expected
    assert info.command.split() == expected
    # the key reaches the server through its environment, never the command line or the log
    assert client.api_key.startswith("sk-") and process.environ()["VLLM_API_KEY"] == client.api_key
    unauthorized = httpx.post(
        f"{info.base_url}/chat/completions", json={"model": "dotevals-test", "messages": QUESTION}
    )
    assert unauthorized.status_code == 401
    assert client.api_key not in info.log_path.read_text()
    assert info.log_path == tmp_path / "logs" / f"vllm-dotevals-test-{info.port}.log"
    await handle.teardown()
    assert client.is_closed() and not psutil.pid_exists(info.pid)


async def test_the_pages_advanced_example_shape(tmp_path: Path) -> None:
    provider = stand_in(tmp_path, base_port=8000)  # the page's default
    handle = await provider.setup("dotevals-test")
    assert isinstance(handle, ModelHandle)
    assert handle.resource_id == "dotevals-test" and handle.manager is provider
    pid = provider.server_info(handle.resource_id).pid
    await provider.teardown(handle.resource_id)
    assert handle.model.is_closed() and not psutil.pid_exists(pid)
    assert provider.active_resources() == []


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vLLM is installed")
async def test_missing_vllm_names_the_extra(tmp_path: Path) -> None:
    provider = VLLMProvider(log_dir=tmp_path)
    with pytest.raises(ServerStartError, match=r"dotevals\[vllm\]") as caught:
        await provider.setup("facebook/opt-125m")
    assert isinstance(caught.value.__cause__, ImportError)
    assert (caught.value.provider, caught.value.spec) == ("vllm", "facebook/opt-125m")
    assert not list(tmp_path.glob("*.log"))
