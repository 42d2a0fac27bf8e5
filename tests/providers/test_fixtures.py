"""The providers' pytest integration: model_providers, NAME_provider, model and --model."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import pytest

from dotevals.providers import LocalServerProvider
from dotevals.providers.server import SessionDefaults, using_session_defaults
from dotevals.testing import ServerProcess

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

ARITHMETIC = """
from dotevals import foreach

data = [("What is 2+3?", "5"), ("What is 6*7?", "42"), ("What is 14+14?", "28")]

@foreach("question,answer", data)
async def eval_math(question, answer, model):
    response = await model.chat.completions.create(
        model=model.model, messages=[{"role": "user", "content": question}]
    )
    return response.choices[0].message.content == answer
"""


#: Plugins this session does not need: hypothesis re-imports itself in every in-process run.
QUIET = ("-p", "no:hypothesispytest", "-p", "no:benchmark")


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest(*args, *QUIET)


def store(root: Path, experiment: str, evaluation: str) -> list[dict[str, Any]]:
    """The entries stored for ``evaluation`` (file names escape characters such as ``:``)."""
    for path in sorted((root / ".dotevals" / experiment).glob("*.jsonl")):
        entries = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        if entries and entries[0].get("evaluation") == evaluation:
            return entries
    raise AssertionError(f"nothing stored for {evaluation!r} under {experiment!r}")


def rows(root: Path, experiment: str, evaluation: str) -> dict[int, dict[str, Any]]:
    return {e["item_id"]: e for e in store(root, experiment, evaluation) if "item_id" in e}


def test_builtin_provider_fixtures(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_providers="""
        from dotevals.providers import (
            LocalModelProvider, OpenAIProvider, VLLMProvider, ModelProvider
        )

        seen = []

        def test_all(model_providers, openai_provider, local_provider, vllm_provider):
            assert {"openai", "local", "vllm"} <= set(model_providers)
            assert all(isinstance(p, ModelProvider) for p in model_providers.values())
            assert isinstance(openai_provider, OpenAIProvider)
            assert isinstance(local_provider, LocalModelProvider)
            assert isinstance(vllm_provider, VLLMProvider)
            assert model_providers["openai"] is openai_provider
            seen.append(openai_provider)

        def test_same_instance_for_the_session(openai_provider):
            assert seen == [openai_provider]
        """
    )
    run(pytester).assert_outcomes(passed=2)


def test_session_gives_servers_its_defaults_and_leaves_the_outer_ones(
    pytester: pytest.Pytester,
) -> None:
    """Servers of an in-process session log under its store; the outer defaults survive it."""
    pytester.makepyfile(
        test_defaults="""
        from pathlib import Path
        from dotevals.providers import LocalServerProvider

        def test_defaults(model_providers):
            defaults = LocalServerProvider(["server"]).session_defaults
            assert defaults.log_dir == Path("inner", "logs").resolve()
            assert defaults.notify is not None
        """
    )
    outer = SessionDefaults(pytester.path / "outer")
    with using_session_defaults(outer):
        run(pytester, "--storage", "json://inner").assert_outcomes(passed=1)
        assert LocalServerProvider(["server"]).session_defaults is outer


def test_providers_are_closed_at_session_end(
    pytester: pytest.Pytester, openai_env: ServerProcess
) -> None:
    """A handle an evaluation never tore down is closed with the session (``aclose``)."""
    pytester.makeconftest(
        """
        clients = []

        def pytest_sessionfinish(session):
            with open("closed.txt", "w") as f:
                f.write(repr([client.is_closed() for client in clients]))
        """
    )
    pytester.makepyfile(
        test_leak="""
        import conftest
        import pytest

        @pytest.mark.asyncio(loop_scope="session")
        async def test_leaks_a_handle(openai_provider):
            handle = await openai_provider.setup("gpt-4o-mini")
            conftest.clients.append(handle.model)
            assert not handle.model.is_closed()
        """
    )
    run(pytester).assert_outcomes(passed=1)
    assert (pytester.path / "closed.txt").read_text() == "[True]"


def test_model_option_end_to_end(pytester: pytest.Pytester, openai_env: ServerProcess) -> None:
    pytester.makepyfile(eval_math=ARITHMETIC)
    result = run(pytester, "--experiment", "e1", "--model", "openai:gpt-4o-mini", "-v")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*eval_math[[]openai:gpt-4o-mini[]] PASSED*"])
    found = rows(pytester.path, "e1", "eval_math[openai:gpt-4o-mini]")
    assert {i: r["scores"][0]["value"] for i, r in found.items()} == {0: True, 1: True, 2: False}
    assert all(r["error"] is None for r in found.values())


def test_model_option_repeats_and_is_shared(pytester: pytest.Pytester) -> None:
    """3 evaluations, 2 models: 1 construction, 1 setup per spec, teardown after the last row."""
    pytester.makeconftest(
        """
        import pytest
        from dotevals.providers import ModelHandle, ModelProvider

        def log(event):
            with open("events.log", "a") as f:
                f.write(event + "\\n")

        class Counting(ModelProvider):
            def __init__(self):
                log("construct")

            async def setup(self, resource_spec, **config):
                log(f"setup {resource_spec}")
                return ModelHandle(resource_spec, lambda q: (resource_spec, log), self)

            async def teardown(self, resource_id):
                log(f"teardown {resource_id}")

        @pytest.fixture(scope="session")
        def openai_provider():
            return Counting()
        """
    )
    body = """
@foreach("x", [1, 2])
async def eval_{n}(x, model):
    name, log = model(x)
    log(f"row {{name}} eval_{n} {{x}}")
    return True
"""
    evals = "".join(body.format(n=n) for n in ("a", "b", "c"))
    pytester.makepyfile(eval_many="from dotevals import foreach\n" + evals)
    models = ["--model", "openai:m1", "--model", "openai:m2"]
    result = run(pytester, "--experiment", "e", *models, "-v")
    result.assert_outcomes(passed=6)
    result.stdout.fnmatch_lines(["*eval_a[[]openai:m1[]]*", "*eval_c[[]openai:m2[]]*"])
    events = (pytester.path / "events.log").read_text().splitlines()
    assert events.count("construct") == 1
    for spec in ("m1", "m2"):
        assert events.count(f"setup {spec}") == 1
        assert events.count(f"teardown {spec}") == 1
        spec_rows = [i for i, e in enumerate(events) if e.startswith(f"row {spec} ")]
        assert len(spec_rows) == 6
        assert events.index(f"setup {spec}") < min(spec_rows)
        assert max(spec_rows) < events.index(f"teardown {spec}")


def test_user_provider_fixture_overrides_the_builtin(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        import pytest
        from dotevals.providers import OpenAIProvider

        class Mine(OpenAIProvider):
            pass

        @pytest.fixture(scope="session")
        def openai_provider():
            return Mine(api_key="sk-mine")
        """
    )
    pytester.makepyfile(
        test_override="""
        import pytest

        def test_override(openai_provider, model_providers):
            assert type(openai_provider).__name__ == "Mine"
            assert model_providers["openai"] is not openai_provider

        @pytest.mark.asyncio(loop_scope="session")
        async def test_model_uses_it(model):
            assert model.api_key == "sk-mine"
        """
    )
    result = run(pytester, "--model", "openai:x")
    result.assert_outcomes(passed=2)


def test_user_model_fixture_overrides_the_builtin(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        import pytest

        @pytest.fixture
        def model():
            return "mine"
        """
    )
    pytester.makepyfile(
        test_model="""
        def test_model(model):
            assert model == "mine"
        """
    )
    for args in ([], ["--model", "openai:x"]):
        result = run(pytester, *args, "-v")
        result.assert_outcomes(passed=1)
        result.stdout.fnmatch_lines(["*test_model.py::test_model PASSED*"])


def test_unknown_provider_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(eval_math=ARITHMETIC)
    result = run(pytester, "--model", "nope:gpt-4")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*no model provider named 'nope'*registered providers:*openai*"])


def test_malformed_model_option_is_a_usage_error(pytester: pytest.Pytester) -> None:
    result = run(pytester, "--model", "gpt-4")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--model 'gpt-4': expected PROVIDER:SPEC*"])


def test_model_without_option_says_to_pass_it(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(eval_math=ARITHMETIC)
    result = run(pytester, "--experiment", "e")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*no model was given: pass --model PROVIDER:SPEC*"])


def test_failed_setup_names_provider_and_spec_and_keeps_the_store(
    pytester: pytest.Pytester, openai_env: ServerProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(eval_math=ARITHMETIC)
    args = [
        "--experiment",
        "e",
        "--model",
        "openai:gpt-4o-mini",
    ]
    run(pytester, *args).assert_outcomes(passed=1)
    evaluation = "eval_math[openai:gpt-4o-mini]"
    before = rows(pytester.path, "e", evaluation)
    monkeypatch.delenv("OPENAI_API_KEY")
    result = run(pytester, *args)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "*OpenAIError*api_key*",
            "*direct cause*",
            "*ProviderError: provider 'openai' could not set up 'gpt-4o-mini'*",
        ]
    )
    assert rows(pytester.path, "e", evaluation) == before
    assert len(before) == 3


def test_any_setup_error_becomes_a_provider_error(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        import pytest
        from dotevals.providers import ModelProvider

        class Broken(ModelProvider):
            async def setup(self, resource_spec, **config):
                raise RuntimeError("GPU on fire")

            async def teardown(self, resource_id):
                pass

        @pytest.fixture(scope="session")
        def local_provider():
            return Broken()
        """
    )
    pytester.makepyfile(eval_math=ARITHMETIC)
    result = run(pytester, "--model", "local:tiny")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "*RuntimeError: GPU on fire*",
            "*direct cause*",
            "*ProviderError: model provider 'local' failed to set up 'tiny': RuntimeError*",
        ]
    )


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_server_down_records_connection_errors(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", f"http://127.0.0.1:{_closed_port()}/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    pytester.makepyfile(eval_math=ARITHMETIC)
    args = ["--experiment", "e", "--model", "openai:gpt-4o-mini", "--max-retries", "0"]
    # In a subprocess: in-process runs re-import part of httpx2 (pytester restores sys.modules
    # between runs), and openai then no longer recognises the new ConnectError class.
    result = pytester.runpytest_subprocess(*args, *QUIET)
    result.assert_outcomes(failed=1)
    found = rows(pytester.path, "e", "eval_math[openai:gpt-4o-mini]")
    assert len(found) == 3
    assert {r["error"]["type"] for r in found.values()} == {"APIConnectionError"}


def test_a_fixture_built_from_provider_setup_records_the_provider(
    pytester: pytest.Pytester, openai_env: ServerProcess
) -> None:
    """A handle, or the model of one, from ``setup(...)``: the header and records know it."""
    pytester.makeconftest(
        """
        import pytest_asyncio
        from dotevals.providers import ModelHandle, ModelProvider

        class Client:
            def __init__(self, model):
                self.model = model

        class HomeMade(ModelProvider):
            async def setup(self, resource_spec, **config):
                return ModelHandle(resource_spec, Client(resource_spec), self)

            async def teardown(self, resource_id):
                pass

        @pytest_asyncio.fixture(loop_scope="session")
        async def handle(openai_provider):
            made = await openai_provider.setup("gpt-handle")
            yield made
            await made.teardown()

        @pytest_asyncio.fixture(loop_scope="session")
        async def client(openai_provider):
            made = await openai_provider.setup("gpt-client")
            yield made.model
            await made.teardown()

        @pytest_asyncio.fixture(loop_scope="session")
        async def home():
            made = await HomeMade().setup("home-model")
            yield made.model
        """
    )
    pytester.makepyfile(
        eval_setup="""
        from dotevals import foreach

        @foreach("x", [(1,), (2,)])
        def eval_handle(x, handle):
            return True

        @foreach("x", [(1,), (2,)])
        def eval_client(x, client):
            return True

        @foreach("x", [(1,), (2,)])
        def eval_home(x, home):
            return True
        """
    )
    run(pytester, "--experiment", "e1").assert_outcomes(passed=3)
    expected = {
        "eval_handle": ("gpt-handle", "openai"),
        "eval_client": ("gpt-client", "openai"),
        "eval_home": ("home-model", "HomeMade"),  # not registered: its class name
    }
    for evaluation, (model, provider) in expected.items():
        entries = store(pytester.path, "e1", evaluation)
        assert (entries[0]["model"], entries[0]["provider"]) == (model, provider)
        assert {e["model"] for e in entries if "item_id" in e} == {model}
