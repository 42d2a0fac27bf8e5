"""ollama, llamacpp, sglang (and vllm's contract): real code paths, a stand-in server.

The real binaries are absent here; each provider runs its real command line with the program
(or module) swapped for ``python -m dotevals.testing``, under the same process supervisor.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from dotevals.errors import ProviderError, ServerStartError
from dotevals.providers import LlamaCppProvider, OllamaProvider, SGLangProvider, VLLMProvider
from dotevals.providers.ollama import ollama_url
from dotevals.providers.server import SessionDefaults
from dotevals.testing import ServerProcess, check_provider

QUESTION = [{"role": "user", "content": "What is 2+3?"}]
TEST_SERVER = [sys.executable, "-m", "dotevals.testing"]
# `ollama serve` stand-in: the test server on the address Ollama reads from $OLLAMA_HOST.
OLLAMA_SERVE = [
    sys.executable,
    "-c",
    "import os, sys; from dotevals.testing import run_server; "
    "host, port = os.environ['OLLAMA_HOST'].rsplit(':', 1); "
    "assert sys.argv[1:] == ['serve'], sys.argv; "
    "sys.exit(run_server(['--host', host, '--port', port]))",
]


async def ask(client: Any) -> None:
    reply = await client.chat.completions.create(model=client.model, messages=QUESTION)
    assert reply.choices[0].message.content == "5"


@pytest.fixture(scope="module")
def running() -> Iterator[ServerProcess]:
    with ServerProcess() as process:
        yield process


# -- connect to a running server ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "url"),
    [
        (None, "http://127.0.0.1:11434/v1"),
        ("", "http://127.0.0.1:11434/v1"),
        ("0.0.0.0", "http://0.0.0.0:11434/v1"),
        ("example.com:8000", "http://example.com:8000/v1"),
        ("https://ollama.example.com/", "https://ollama.example.com:11434/v1"),
        ("[::1]", "http://[::1]:11434/v1"),
    ],
)
def test_ollama_host_is_read_as_ollama_does(host: str | None, url: str) -> None:
    assert ollama_url(host) == url


async def test_ollama_connects_to_ollama_host(
    running: ServerProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OLLAMA_HOST", f"{running.host}:{running.port}")
    provider = OllamaProvider()
    assert provider.base_url == running.base_url and not provider.start
    await check_provider(provider, "llama3.2", use=ask)


async def test_llamacpp_connects_to_a_given_url(running: ServerProcess) -> None:
    assert LlamaCppProvider().base_url == "http://127.0.0.1:8080/v1"
    await check_provider(LlamaCppProvider(running.base_url), "any", use=ask)


async def test_server_options_without_start_are_explained(running: ServerProcess) -> None:
    with pytest.raises(ProviderError, match=r"server options need LlamaCppProvider\(start=True\)"):
        await LlamaCppProvider(running.base_url).setup("m", ctx_size=4096)


def test_model_option_with_a_running_ollama(
    pytester: pytest.Pytester, running: ServerProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OLLAMA_HOST", f"{running.host}:{running.port}")
    pytester.makepyfile(
        eval_ollama="""
        from dotevals import foreach

        @foreach("question,answer", [("What is 2+3?", "5"), ("What is 6*7?", "42")])
        async def eval_ollama(question, answer, model):
            reply = await model.chat.completions.create(
                model=model.model, messages=[{"role": "user", "content": question}]
            )
            return reply.choices[0].message.content == answer
        """
    )
    result = pytester.runpytest("--model", "ollama:llama3.2", "-v", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*eval_ollama[[]ollama:llama3.2[]] PASSED*", "*2/2*"])


# -- start the server ---------------------------------------------------------------------------


async def test_llamacpp_starts_llama_server(tmp_path: Path) -> None:
    provider = LlamaCppProvider(
        start=True, executable=TEST_SERVER, log_dir=tmp_path, stop_grace=1.0, ctx_size=4096
    )
    handle = await provider.setup("models/tiny.gguf", n_gpu_layers=99)
    info = provider.server_info(handle.resource_id)
    assert info.command.endswith(
        f"-m models/tiny.gguf --host 127.0.0.1 --port {info.port} --ctx-size 4096 --n-gpu-layers 99"
    )
    assert info.port >= 8080 and info.log_path.parent == tmp_path
    key = handle.model.api_key
    assert psutil.Process(info.pid).environ()["LLAMA_API_KEY"] == key
    assert key not in " ".join(psutil.Process(info.pid).cmdline())
    async with httpx.AsyncClient(trust_env=False) as http:  # the key is required
        assert (await http.get(f"{info.base_url}/models")).status_code == 401
    await ask(handle.model)
    await handle.teardown()
    assert not psutil.pid_exists(info.pid) or psutil.Process(info.pid).status() == "zombie"


async def test_ollama_starts_ollama_serve_with_options_in_its_environment(tmp_path: Path) -> None:
    provider = OllamaProvider(
        start=True, executable=OLLAMA_SERVE, log_dir=tmp_path, stop_grace=1.0, num_parallel=4
    )
    handle = await provider.setup("llama3.2", keep_alive="10m", flash_attention=True)
    info = provider.server_info(handle.resource_id)
    env = psutil.Process(info.pid).environ()
    assert env["OLLAMA_HOST"] == f"127.0.0.1:{info.port}" and info.port >= 11434
    assert (env["OLLAMA_NUM_PARALLEL"], env["OLLAMA_KEEP_ALIVE"]) == ("4", "10m")
    assert env["OLLAMA_FLASH_ATTENTION"] == "true"
    await ask(handle.model)
    await handle.teardown()


async def test_sglang_runs_its_launch_server_module(tmp_path: Path) -> None:
    provider = SGLangProvider(
        module="dotevals.testing", log_dir=tmp_path, stop_grace=1.0, mem_fraction_static=0.8
    )
    assert SGLangProvider().base_port == 30000 and provider.health_path == "/health"
    handle = await provider.setup("Qwen/Qwen2.5-0.5B-Instruct", tp_size=1)
    info = provider.server_info(handle.resource_id)
    assert f"-m dotevals.testing --model-path Qwen/Qwen2.5-0.5B-Instruct --port {info.port}" in (
        info.command
    )
    assert info.command.endswith("--api-key *** --mem-fraction-static 0.8 --tp-size 1")
    assert handle.model.api_key not in info.command
    await ask(handle.model)
    await handle.teardown()


@pytest.mark.parametrize(
    "make",
    [
        lambda tmp: LlamaCppProvider(start=True, executable=TEST_SERVER, log_dir=tmp),
        lambda tmp: OllamaProvider(start=True, executable=OLLAMA_SERVE, log_dir=tmp),
        lambda tmp: SGLangProvider(module="dotevals.testing", log_dir=tmp),
        lambda tmp: VLLMProvider(module="dotevals.testing", log_dir=tmp),
    ],
    ids=["llamacpp", "ollama", "sglang", "vllm"],
)
async def test_started_servers_keep_the_contract(make: Any, tmp_path: Path) -> None:
    provider = make(tmp_path)
    provider.stop_grace = 1.0
    checked = await check_provider(provider, "dotevals-test", use=ask)
    assert checked.processes  # a server and its watchdog were started, and are gone


async def test_missing_programs_are_named(tmp_path: Path) -> None:
    with pytest.raises(ServerStartError, match="command not found: llama-server"):
        await LlamaCppProvider(start=True, log_dir=tmp_path).setup("m.gguf")
    with pytest.raises(ServerStartError, match="command not found: ollama"):
        await OllamaProvider(start=True, log_dir=tmp_path).setup("llama3.2")
    if "sglang" not in sys.modules:
        with pytest.raises(ServerStartError, match=r"pip install 'dotevals\[sglang\]'"):
            await SGLangProvider(log_dir=tmp_path).setup("m")


def test_constructor_options_reach_the_server_and_the_rest_are_server_options(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DOTEVALS_LOG_DIR", raising=False)
    defaults = SessionDefaults(tmp_path / "session")
    llamacpp = LlamaCppProvider(start=True, session_defaults=defaults, ctx_size=4096)
    vllm = VLLMProvider(9000, startup_timeout=5.0, stop_grace=1.0, host="0.0.0.0", dtype="half")
    assert (llamacpp.startup_timeout, llamacpp.base_port, llamacpp.health_path) == (
        300.0,
        8080,
        "/health",
    )
    assert llamacpp.log_dir == tmp_path / "session" and llamacpp.defaults == {"ctx_size": 4096}
    assert (vllm.startup_timeout, vllm.stop_grace, vllm.host, vllm.base_port) == (
        5.0,
        1.0,
        "0.0.0.0",
        9000,
    )
    assert VLLMProvider().startup_timeout == 600.0 and vllm.defaults == {"dtype": "half"}
