"""The "Model Providers API" page's examples, run as written against the local test server.

The page's code blocks are copied below verbatim (the lines it leaves out, such as imports and
the datasets, are added around them); ``OPENAI_BASE_URL``/``OPENAI_API_KEY`` point the real
openai SDK at a real local OpenAI-compatible server.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import socket
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from distributions import make_distribution
from dotevals.providers import ModelHandle, ModelProvider
from dotevals.testing import ServerProcess

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

# --------------------------------------------------------------------------- the page's code

PAGE_BASIC_PROVIDER = '''
from dotevals.providers import ModelProvider, ModelHandle
from openai import AsyncOpenAI

class OpenAIProvider(ModelProvider):
    """Provider for OpenAI models."""

    def __init__(self, api_key: str = None):
        self.api_key = api_key
        self.clients = {}

    async def setup(self, model_name: str, **config) -> ResourceHandle:
        """Create an OpenAI client for the specified model."""
        if model_name not in self.clients:
            client = AsyncOpenAI(api_key=self.api_key or config.get('api_key'))
            self.clients[model_name] = client

        return ModelHandle(
            resource_id=model_name,
            model=self.clients[model_name],
            manager=self
        )

    async def teardown(self, resource_id: str) -> None:
        """Clean up client if needed."""
        if resource_id in self.clients:
            # OpenAI client doesn't need explicit cleanup
            del self.clients[resource_id]
'''

PAGE_ADVANCED_PROVIDER = '''
import asyncio
import aiohttp
from dotevals.providers import ModelProvider, ModelHandle

class VLLMProvider(ModelProvider):
    """Provider for vLLM server instances."""

    def __init__(self, base_port: int = 8000):
        self.base_port = base_port
        self.servers = {}
        self.next_port = base_port

    async def setup(self, model_name: str, **config) -> ResourceHandle:
        """Start a vLLM server for the model."""
        if model_name in self.servers:
            # Return existing server
            return ModelHandle(
                resource_id=model_name,
                model=self.servers[model_name]['client'],
                manager=self
            )

        # Start new server
        port = self.next_port
        self.next_port += 1

        process = await asyncio.create_subprocess_exec(
            'python', '-m', 'vllm.entrypoints.openai.api_server',
            '--model', model_name,
            '--port', str(port),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE
        )

        # Wait for server to start
        await self._wait_for_server(f"http://localhost:{port}")

        # Create client
        client = aiohttp.ClientSession(
            base_url=f"http://localhost:{port}"
        )

        self.servers[model_name] = {
            'process': process,
            'client': client,
            'port': port
        }

        return ModelHandle(
            resource_id=model_name,
            model=client,
            manager=self
        )

    async def teardown(self, resource_id: str) -> None:
        """Stop the vLLM server."""
        if resource_id in self.servers:
            server = self.servers[resource_id]
            await server['client'].close()
            server['process'].terminate()
            await server['process'].wait()
            del self.servers[resource_id]

    async def _wait_for_server(self, url: str, timeout: int = 30):
        """Wait for server to become available."""
        # Implementation details...
'''

# The page elides the body of ``_wait_for_server``; this is the simple poll it stands for.
WAIT_FOR_SERVER = """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        async with aiohttp.ClientSession() as session:
            while True:
                try:
                    async with session.get(url + "/health") as response:
                        if response.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                if loop.time() > deadline:
                    raise TimeoutError(f"{url} did not come up within {timeout} s")
                await asyncio.sleep(0.05)
"""

PAGE_FIXTURES = '''
# In your conftest.py or plugin
import pytest
from mypackage import OpenAIProvider

@pytest.fixture(scope="session")
def openai_provider():
    """Session-scoped OpenAI provider."""
    return OpenAIProvider()

@pytest.fixture
async def gpt4(openai_provider):
    """Get GPT-4 client."""
    handle = await openai_provider.setup("gpt-4")
    yield handle.model
    await handle.teardown()
'''

PAGE_EVALUATION = '''
from dotevals import foreach

@foreach("question,answer", dataset)
async def eval_gpt4(question, answer, gpt4):
    """Evaluate using GPT-4 client from fixture."""
    response = await gpt4.chat.completions.create(
        model="gpt-4",
        messages=[{"role": "user", "content": question}]
    )
    return response.choices[0].message.content == answer
'''

PAGE_PARAMETRIZATION = '''
@pytest.fixture
async def model_client(request, openai_provider):
    """Parametrized model client fixture."""
    model_name = request.param
    handle = await openai_provider.setup(model_name)
    yield handle.model
    await handle.teardown()

@pytest.mark.parametrize("model_client", ["gpt-3.5-turbo", "gpt-4"], indirect=True)
@foreach("prompt", prompts)
async def eval_models(prompt, model_client):
    """Evaluate multiple models."""
    response = await model_client.chat.completions.create(
        model=model_client.model,  # Model name from parametrization
        messages=[{"role": "user", "content": prompt}]
    )
    return Result(response.choices[0].message.content)
'''

# --------------------------------------------------------------------------- helpers

QUIET = ("-p", "no:cacheprovider", "-p", "no:hypothesispytest", "-p", "no:benchmark")


def stored_rows(root: Path, experiment: str, evaluation: str) -> dict[int, dict[str, Any]]:
    """The last record of every row stored for ``evaluation`` (found by its header)."""
    for path in sorted((root / ".dotevals" / experiment).glob("*.jsonl")):
        entries = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        if entries and entries[0].get("evaluation") == evaluation:
            return {e["item_id"]: e for e in entries if "item_id" in e}
    raise AssertionError(f"nothing stored for {evaluation!r} under {experiment!r}")


# --------------------------------------------------------------------------- 1. basic example

ARITHMETIC = [("What is 2+3?", "5"), ("What is 6*7?", "42"), ("What is 14+14?", "28")]


def test_basic_example_in_fixtures_and_evaluations(
    pytester: pytest.Pytester, openai_env: ServerProcess
) -> None:
    pytester.makepyfile(
        mypackage="from dotevals.providers import ResourceHandle\n" + PAGE_BASIC_PROVIDER
    )
    pytester.makeconftest(PAGE_FIXTURES)
    pytester.makepyfile(eval_gpt4=f"dataset = {ARITHMETIC!r}\n" + PAGE_EVALUATION)
    openai_env.reset_stats()
    result = pytester.runpytest("--experiment", "e1", *QUIET)
    result.assert_outcomes(passed=1)
    rows = stored_rows(pytester.path, "e1", "eval_gpt4")
    assert {i: r["scores"][0]["value"] for i, r in rows.items()} == {0: True, 1: True, 2: False}
    assert [rows[i]["dataset_row"] for i in range(3)] == [list(row) for row in ARITHMETIC]
    assert openai_env.stats()["completions"] == 3


# --------------------------------------------------------------------------- 2. parametrization

PROMPTS = ["What is 2+3?", "reverse: abc"]

# Beyond the page: the same fixture, storing the model name the server answered as.
MODEL_NAMES = """
@pytest.mark.parametrize("model_client", ["gpt-3.5-turbo", "gpt-4"], indirect=True)
@foreach("prompt", prompts)
async def eval_served_model(prompt, model_client):
    response = await model_client.chat.completions.create(
        model=model_client.model, messages=[{"role": "user", "content": prompt}]
    )
    return Result(response.model)
"""


def test_parametrization_with_the_builtin_provider_fixture(
    pytester: pytest.Pytester, openai_env: ServerProcess
) -> None:
    head = f"import pytest\nfrom dotevals import foreach, Result\n\nprompts = {PROMPTS!r}\n"
    pytester.makepyfile(eval_models=head + PAGE_PARAMETRIZATION + MODEL_NAMES)
    result = pytester.runpytest("--experiment", "e1", "-v", *QUIET)
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(
        ["*eval_models[[]gpt-3.5-turbo[]] PASSED*", "*eval_models[[]gpt-4[]] PASSED*"],
        consecutive=False,
    )
    for name in ("gpt-3.5-turbo", "gpt-4"):
        answers = stored_rows(pytester.path, "e1", f"eval_models[{name}]")
        assert [answers[i]["model_response"] for i in range(2)] == ["5", "cba"]
        served = stored_rows(pytester.path, "e1", f"eval_served_model[{name}]")
        assert {r["model_response"] for r in served.values()} == {name}


# --------------------------------------------------------------------------- 3. advanced example


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def _load_page_module(tmp_path: Path, name: str, source: str) -> ModuleType:
    path = tmp_path / f"{name}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def page_vllm_provider(tmp_path: Path) -> type[Any]:
    """The page's VLLMProvider, starting the dotevals test server instead of vLLM."""
    pytest.importorskip("aiohttp")
    source = PAGE_ADVANCED_PROVIDER.replace(
        "'vllm.entrypoints.openai.api_server'", "'dotevals.testing'"
    )
    source = source.replace("'python', '-m'", f"{sys.executable!r}, '-m'")
    source = source.replace("        # Implementation details...\n", WAIT_FOR_SERVER)
    assert "dotevals.testing" in source and "/health" in source
    header = "from dotevals.providers import ResourceHandle\n"
    module = _load_page_module(tmp_path, "page_vllm", header + source)
    cls: type[Any] = module.VLLMProvider
    return cls


async def test_advanced_example_handle_contract(page_vllm_provider: type[Any]) -> None:
    import aiohttp

    provider = page_vllm_provider(base_port=_free_port())
    handle = await provider.setup("my-model")
    session = handle.model
    assert isinstance(session, aiohttp.ClientSession)
    assert handle.is_active and handle.manager is provider
    payload = {"model": "my-model", "messages": [{"role": "user", "content": "What is 2+3?"}]}
    async with session.post("/v1/chat/completions", json=payload) as response:
        body = await response.json()
    assert body["choices"][0]["message"]["content"] == "5"
    again = await provider.setup("my-model")
    assert again.model is session
    process = provider.servers["my-model"]["process"]

    await handle.teardown()
    assert not handle.is_active
    assert process.returncode is not None
    assert session.closed and "my-model" not in provider.servers
    await handle.teardown()  # a second teardown does nothing
    await again.teardown()  # the resource is gone: nothing to do
    assert not again.is_active and provider.servers == {}


# --------------------------------------------------------------------------- 4. entry points

THIRD_PARTY = """
import os
from dotevals.providers import ModelHandle, ModelProvider

def log(event):
    with open(os.environ["THIRD_LOG"], "a") as f:
        f.write(event + "\\n")

class ThirdProvider(ModelProvider):
    def __init__(self):
        log("construct")

    async def setup(self, resource_spec, **config):
        log(f"setup {resource_spec}")
        return ModelHandle(resource_spec, f"third model {resource_spec}", self)

    async def teardown(self, resource_id):
        log(f"teardown {resource_id}")
"""

OLD_STYLE = """
import pytest
from thirdparty import ThirdProvider

@pytest.fixture(scope="session")
def old_provider():
    return ThirdProvider()

@pytest.fixture(scope="session")
def make_legacy():
    return ThirdProvider()
"""

USES_THIRD_PARTY = """
from dotevals import foreach
from thirdparty import ThirdProvider

def test_registered(model_providers, third_provider, old_provider, legacy_provider):
    assert isinstance(model_providers["third"], ThirdProvider)
    assert model_providers["third"] is third_provider
    assert model_providers["old"] is old_provider
    assert model_providers["legacy"] is legacy_provider
    assert {"openai", "third", "old", "legacy"} <= set(model_providers)

@foreach("x", [1, 2, 3])
def eval_third(x, model):
    return model == "third model anything"
"""


def test_installed_third_party_provider(
    pytester: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = tmp_path / "site"
    make_distribution(
        site,
        "thirdparty",
        {
            "third": "thirdparty:ThirdProvider",
            "old": "oldplugin:old_provider",
            "legacy": "oldplugin:make_legacy",
        },
        {"thirdparty": THIRD_PARTY, "oldplugin": OLD_STYLE},
    )
    log = tmp_path / "third.log"
    monkeypatch.setenv("PYTHONPATH", str(site))
    monkeypatch.setenv("THIRD_LOG", str(log))
    pytester.makepyfile(eval_third=USES_THIRD_PARTY)
    args = ["--experiment", "e", "--model", "third:anything", "-v", *QUIET]
    result = pytester.runpytest_subprocess(*args)
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*eval_third[[]third:anything[]] PASSED*"])
    rows = stored_rows(pytester.path, "e", "eval_third[third:anything]")
    assert [rows[i]["scores"][0]["value"] for i in range(3)] == [True, True, True]
    events = log.read_text().splitlines()
    # third (built by the session), old and legacy (built by their 0.26-style fixtures)
    assert events.count("construct") == 3
    assert events[-2:] == ["setup anything", "teardown anything"]


def test_broken_provider_plugin_is_a_session_error(
    pytester: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = tmp_path / "site"
    broken = "import missing_dependency_of_brokenmod\n"
    make_distribution(site, "brokenpkg", {"broken": "brokenmod:Provider"}, {"brokenmod": broken})
    monkeypatch.setenv("PYTHONPATH", str(site))
    pytester.makepyfile(test_nothing="def test_nothing():\n    pass\n")
    result = pytester.runpytest_subprocess(*QUIET)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "*'broken' = 'brokenmod:Provider'*brokenpkg*"
            "ModuleNotFoundError*missing_dependency_of_brokenmod*"
        ]
    )


@pytest.mark.parametrize(
    ("value", "module", "error"),
    [
        pytest.param(
            "raisingmod:Provider",
            "raise RuntimeError('no licence server')\n",
            "RuntimeError: no licence server",
            id="raises-at-import",
        ),
        pytest.param(
            "syntaxmod:Provider",
            "def broken(:\n",
            "SyntaxError*",
            id="syntax-error",
        ),
        pytest.param(
            "emptymod:Provider",
            "class Other:\n    pass\n",
            "AttributeError*Provider*",
            id="missing-object",
        ),
    ],
)
def test_plugin_that_fails_to_load_is_a_session_error(
    pytester: pytest.Pytester,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    value: str,
    module: str,
    error: str,
) -> None:
    site = tmp_path / "site"
    make_distribution(site, "badpkg", {"bad": value}, {value.partition(":")[0]: module})
    monkeypatch.setenv("PYTHONPATH", str(site))
    pytester.makepyfile(test_nothing="def test_nothing():\n    pass\n")
    result = pytester.runpytest_subprocess(*QUIET)
    assert result.ret == pytest.ExitCode.USAGE_ERROR  # a session error, not a skip
    assert "INTERNALERROR" not in result.stderr.str() + result.stdout.str()
    result.stderr.fnmatch_lines([f"*'bad' = '{value}'*(from badpkg) failed to load: {error}"])
    result.stdout.no_fnmatch_line("*1 passed*")


def test_plugin_that_names_no_provider_is_a_session_error(
    pytester: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = tmp_path / "site"
    make_distribution(site, "intpkg", {"answer": "intmod:ANSWER"}, {"intmod": "ANSWER = 42\n"})
    monkeypatch.setenv("PYTHONPATH", str(site))
    pytester.makepyfile(test_nothing="def test_nothing():\n    pass\n")
    result = pytester.runpytest_subprocess(*QUIET)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "INTERNALERROR" not in result.stderr.str() + result.stdout.str()
    result.stderr.fnmatch_lines(
        ["*entry point 'answer'*(from intpkg) names 42: expected a ModelProvider*"]
    )
    result.stdout.no_fnmatch_line("*1 passed*")


# --------------------------------------------------------------------------- 5. handle teardown


class _CountingProvider(ModelProvider):
    """A manager whose teardown can fail and can be held open, counting calls."""

    def __init__(self, *, fail: bool = False) -> None:
        self.fail = fail
        self.calls = 0
        self.release = asyncio.Event()
        self.release.set()

    async def setup(self, resource_spec: str, **config: Any) -> ModelHandle:
        return ModelHandle(resource_spec, object(), self)

    async def teardown(self, resource_id: str) -> None:
        self.calls += 1
        await self.release.wait()
        if self.fail:
            raise RuntimeError("teardown failed")


async def test_a_teardown_that_raises_leaves_the_handle_active_for_a_retry() -> None:
    provider = _CountingProvider(fail=True)
    handle = await provider.setup("m")
    with pytest.raises(RuntimeError, match="teardown failed"):
        await handle.teardown()
    assert handle.is_active  # as on the page: inactive only once the manager returned
    provider.fail = False
    await handle.teardown()  # the retry reaches the manager again
    assert not handle.is_active and provider.calls == 2
    await handle.teardown()  # and then teardown is idempotent
    assert provider.calls == 2


async def test_concurrent_teardowns_call_the_manager_once() -> None:
    provider = _CountingProvider()
    provider.release.clear()  # hold the first teardown open while the second arrives
    handle = await provider.setup("m")
    first = asyncio.create_task(handle.teardown())
    second = asyncio.create_task(handle.teardown())
    await asyncio.sleep(0)
    assert provider.calls == 1 and handle.is_active
    provider.release.set()
    await asyncio.gather(first, second)
    assert provider.calls == 1 and not handle.is_active
