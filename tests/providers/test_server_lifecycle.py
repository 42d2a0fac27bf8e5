"""LocalServerProvider and LocalModelProvider: real servers, real signals, real SDK requests."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

import dotevals
import dotevals.cache
from dotevals.errors import ProviderError, ServerStartError
from dotevals.providers import LocalModelProvider, LocalServerProvider
from dotevals.providers.server import (
    ServerDiedError,
    SessionDefaults,
    config_flags,
    next_free_port,
    pick_free_port,
    using_session_defaults,
)
from dotevals.retry import is_transient
from processes import SPAWN_CHILD_AND_GRANDCHILD, wait_for

SRC = str(Path(dotevals.__file__).resolve().parent.parent)
QUESTION = [{"role": "user", "content": "What is 2+3?"}]

# A stand-in server that starts a child, which starts a grandchild, then answers 200 to any GET.
FAMILY_SERVER = (
    r"""
import http.server, signal, subprocess, sys, time
if "--ignore-term" in sys.argv:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # inherited by the children, across exec
if "--slow" in sys.argv:
    time.sleep(1.5)  # a model that takes a while to load
print("family server argv:", sys.argv[1:], flush=True)
"""
    + SPAWN_CHILD_AND_GRANDCHILD
    + r"""
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass

http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
"""
)

# A runner that starts a server, says where it is, and sleeps until it is killed.
RUNNER = r"""
import asyncio, json, sys
from dotevals.providers import LocalModelProvider, LocalServerProvider

async def main():
    kind, log_dir, family = sys.argv[1:4]
    if kind == "local":
        provider = LocalModelProvider(log_dir=log_dir, stop_grace=1.0)
    else:
        command = [sys.executable, family, "{port}"]
        if kind == "stubborn":  # ignores SIGTERM: only SIGKILL ends it
            command.append("--ignore-term")
        provider = LocalServerProvider(
            command, health_path="/health", log_dir=log_dir, stop_grace=1.0
        )
    handle = await provider.setup("victim")
    info = provider.server_info(handle.resource_id)
    print(json.dumps({"pid": info.pid, "pgid": info.pgid}), flush=True)
    await asyncio.sleep(600)

asyncio.run(main())
"""


# -- helpers ------------------------------------------------------------------------------------


def alive(pid: int) -> bool:
    """Whether ``pid`` runs; zombies (dead, waiting to be reaped) count as dead."""
    try:
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False


def group(pgid: int) -> set[int]:
    """The live processes of process group ``pgid``."""
    pids = set()
    for proc in psutil.process_iter():
        try:
            if os.getpgid(proc.pid) == pgid and alive(proc.pid):
                pids.add(proc.pid)
        except (ProcessLookupError, psutil.Error):
            continue
    return pids


def family_of(pgid: int, size: int = 3) -> set[int]:
    """The server's group once it holds ``size`` processes (server, child, grandchild)."""
    assert wait_for(lambda: len(group(pgid)) >= size, 10), f"group {pgid}: {group(pgid)}"
    return group(pgid)


def records(log_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(path.read_text()) for path in (log_dir / "servers").glob("*.json")]


@pytest.fixture
def family(tmp_path: Path) -> Path:
    script = tmp_path / "family_server.py"
    script.write_text(FAMILY_SERVER)
    return script


@pytest.fixture
def family_provider(family: Path, tmp_path: Path) -> Callable[..., LocalServerProvider]:
    def make(*extra: str, **options: Any) -> LocalServerProvider:
        options.setdefault("log_dir", tmp_path / "logs")
        options.setdefault("stop_grace", 1.0)
        command = [sys.executable, str(family), "{port}", *extra]
        return LocalServerProvider(command, health_path="/health", **options)

    return make


@pytest.fixture
def runner_script(tmp_path: Path, family: Path) -> Iterator[Callable[[str], subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([SRC, os.environ.get("PYTHONPATH", "")])}
    script = tmp_path / "runner.py"
    script.write_text(RUNNER)

    def start(kind: str) -> subprocess.Popen[str]:
        argv = [sys.executable, str(script), kind, str(tmp_path / "logs"), str(family)]
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, env=env)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        assert proc.stdout is not None
        proc.stdout.close()


def read_server(runner: subprocess.Popen[str]) -> dict[str, int]:
    assert runner.stdout is not None
    line = runner.stdout.readline()
    assert line, f"the runner exited with {runner.wait()} before its server was ready"
    data: dict[str, int] = json.loads(line)
    return data


# -- ports, flags -------------------------------------------------------------------------------


def test_free_ports_are_never_handed_out_twice() -> None:
    ports = [pick_free_port() for _ in range(50)]
    assert len(set(ports)) == 50
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        base = busy.getsockname()[1]
        first = next_free_port(base)
        second = next_free_port(base)
    assert base < first < second
    assert first not in ports and second not in ports


def test_config_becomes_flags() -> None:
    config = {"max_model_len": 2048, "enforce_eager": True, "quantization": None, "trust": False}
    assert config_flags(config) == ["--max-model-len", "2048", "--enforce-eager"]
    assert config_flags({"stop": ["a", "b"], "dtype": "float16"}) == [
        *("--stop", "a", "b"),
        *("--dtype", "float16"),
    ]


# -- start, serve, stop -------------------------------------------------------------------------


async def test_local_model_answers_and_stops_cleanly(tmp_path: Path) -> None:
    log_dir = tmp_path / "logs"
    provider = LocalModelProvider(log_dir=log_dir, stop_grace=1.0)
    handle = await provider.setup("dotevals-test")
    client = handle.model
    info = provider.server_info(handle.resource_id)
    reply = await client.chat.completions.create(model=client.model, messages=QUESTION)
    assert reply.choices[0].message.content == "5"
    assert client.model == "dotevals-test"
    assert info.host == "127.0.0.1"
    assert str(client.base_url) == f"http://127.0.0.1:{info.port}/v1/"
    # the server holds the key: a request without it is refused
    async with httpx.AsyncClient(trust_env=False) as http:
        assert (await http.get(f"{info.base_url}/models")).status_code == 401
    key = client.api_key
    assert len(key) >= 32 and key != "EMPTY"
    assert info.log_path == log_dir / f"local-dotevals-test-{info.port}.log"
    assert "--api-key ***" in info.command and key not in info.command
    [record] = records(log_dir)
    assert record["runner_pid"] == os.getpid() and record["pgid"] == info.pgid
    assert key not in json.dumps(record)

    await handle.teardown()
    assert client.is_closed()
    assert not alive(info.pid) and not group(info.pgid)
    assert records(log_dir) == []
    assert key not in info.log_path.read_text()


async def test_concurrent_setups_share_one_server(tmp_path: Path) -> None:
    provider = LocalModelProvider(log_dir=tmp_path / "logs", stop_grace=1.0)
    handles = await asyncio.gather(*(provider.setup("shared-a") for _ in range(5)))
    other = await provider.setup("shared-b")
    servers = {provider.server_info(h.resource_id).pid for h in handles}
    assert len(servers) == 1 and len({id(h.model) for h in handles}) == 1
    assert provider.server_info(other.resource_id).pid not in servers
    names = [" ".join(p.cmdline()) for p in psutil.Process().children()]
    assert sum("--model shared-a" in name for name in names) == 1
    assert sum("--model shared-b" in name for name in names) == 1
    assert len(records(tmp_path / "logs")) == 2

    [pid] = servers
    for handle in handles[:4]:
        await handle.teardown()
    assert alive(pid)
    reply = await handles[4].model.chat.completions.create(model="shared-a", messages=QUESTION)
    assert reply.choices[0].message.content == "5"
    await handles[4].teardown()
    assert not alive(pid)
    await other.teardown()
    assert provider.active_resources() == [] and records(tmp_path / "logs") == []


async def test_stop_kills_the_whole_group(
    family_provider: Callable[..., LocalServerProvider], capfd: pytest.CaptureFixture[str]
) -> None:
    provider = family_provider()
    handle = await provider.setup("family", max_model_len=2048, enforce_eager=True, dtype=None)
    info = provider.server_info(handle.resource_id)
    members = family_of(info.pgid)
    assert provider.server_info(handle.resource_id).command.endswith(
        "--max-model-len 2048 --enforce-eager"
    )
    assert psutil.Process(info.pid).cmdline()[-3:] == ["--max-model-len", "2048", "--enforce-eager"]
    assert handle.model.api_key == "EMPTY"  # the command names no {api_key}
    assert capfd.readouterr().err == ""  # quiet when stderr is not a terminal
    await handle.teardown()
    assert not any(alive(pid) for pid in members)


async def test_stop_escalates_to_sigkill(
    family_provider: Callable[..., LocalServerProvider],
) -> None:
    provider = family_provider("--ignore-term", stop_grace=0.5)
    handle = await provider.setup("stubborn")
    info = provider.server_info(handle.resource_id)
    members = family_of(info.pgid)
    started = time.monotonic()
    await handle.teardown()
    assert 0.5 <= time.monotonic() - started < 5
    assert not any(alive(pid) for pid in members)


async def test_log_dir_from_environment(
    family_provider: Callable[..., LocalServerProvider],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DOTEVALS_LOG_DIR", str(tmp_path / "from-env"))
    provider = family_provider(log_dir=None)
    handle = await provider.setup("org/model:v1")
    info = provider.server_info(handle.resource_id)
    assert info.log_path == tmp_path / "from-env" / f"local-org_model_v1-{info.port}.log"
    await handle.teardown()
    monkeypatch.delenv("DOTEVALS_LOG_DIR")
    monkeypatch.chdir(tmp_path)
    # defaults given explicitly win over this very session's (its store root's logs/)
    provider = family_provider(log_dir=None, session_defaults=SessionDefaults())
    handle = await provider.setup("m")
    info = provider.server_info(handle.resource_id)
    assert info.log_path.parent == tmp_path / ".dotevals" / "logs"
    await handle.teardown()


async def test_session_defaults_given_to_the_provider_win(
    family_provider: Callable[..., LocalServerProvider], tmp_path: Path
) -> None:
    lines: list[str] = []
    session = SessionDefaults(tmp_path / "session-logs", lambda line: lines.append("session"))
    given = SessionDefaults(tmp_path / "given-logs", lines.append)
    with using_session_defaults(session):
        provider = family_provider(log_dir=None, session_defaults=given)
        handle = await provider.setup("m")
    info = provider.server_info(handle.resource_id)
    assert info.log_path.parent == tmp_path / "given-logs"
    start = f"Starting the local server for 'm' on port {info.port} (log: {info.log_path})"
    assert lines == [start]
    await handle.teardown()


def test_session_defaults_hold_for_the_with_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DOTEVALS_LOG_DIR", raising=False)
    provider = LocalServerProvider(["server"])
    before = provider.session_defaults
    outer, inner = SessionDefaults(tmp_path / "outer"), SessionDefaults(tmp_path / "inner")
    with using_session_defaults(outer):
        with using_session_defaults(inner):
            assert provider.log_dir == tmp_path / "inner"
        assert provider.session_defaults is outer
    assert provider.session_defaults == before


# -- failures to start --------------------------------------------------------------------------


async def test_server_that_exits_fails_fast_with_its_log(tmp_path: Path) -> None:
    script = "import sys; print('boom', sys.argv[1:], flush=True); sys.exit(3)"
    command = [sys.executable, "-c", script, "--port", "{port}", "--api-key", "{api_key}"]
    provider = LocalServerProvider(command, log_dir=tmp_path / "logs", name="crashy")
    started = time.monotonic()
    with pytest.raises(ServerStartError) as caught:
        await provider.setup("m")
    assert time.monotonic() - started < 2
    error = caught.value
    message = str(error)
    assert (error.provider, error.spec) == ("crashy", "m")
    assert "exited with code 3" in message and "boom" in message
    assert "--api-key ***" in message
    [log] = (tmp_path / "logs").glob("crashy-m-*.log")
    key = log.read_text().split("'--api-key', '")[1].split("'")[0]
    assert len(key) >= 32 and key not in message
    assert records(tmp_path / "logs") == []


async def test_startup_timeout_kills_and_hints(tmp_path: Path) -> None:
    marker = f"never-healthy-{os.getpid()}-{time.monotonic_ns()}"
    command = [sys.executable, "-c", "import time; time.sleep(60)", marker, "{port}"]
    provider = LocalServerProvider(
        command, startup_timeout=1.0, stop_grace=0.5, log_dir=tmp_path / "logs"
    )
    with pytest.raises(ServerStartError, match="raise startup_timeout"):
        await provider.setup("slow")
    leftovers = [p for p in psutil.process_iter() if marker in " ".join(_cmdline(p))]
    assert not [p for p in leftovers if alive(p.pid)]
    assert records(tmp_path / "logs") == []


def _cmdline(proc: psutil.Process) -> list[str]:
    try:
        return list(proc.cmdline())
    except psutil.Error:
        return []


async def test_setup_failure_is_chained(tmp_path: Path) -> None:
    provider = LocalServerProvider(["no-such-server-binary", "{port}"], log_dir=tmp_path)
    with pytest.raises(ServerStartError) as caught:
        await provider.setup("m")
    assert isinstance(caught.value.__cause__, FileNotFoundError)
    assert caught.value.provider == "local" and caught.value.spec == "m"


# -- death during the run -----------------------------------------------------------------------


async def test_server_death_fails_requests_fast(tmp_path: Path) -> None:
    provider = LocalModelProvider(log_dir=tmp_path / "logs", stop_grace=1.0)
    handle = await provider.setup("dotevals-test")
    client = handle.model
    info = provider.server_info(handle.resource_id)
    await client.chat.completions.create(model=client.model, messages=QUESTION)
    os.killpg(info.pgid, signal.SIGKILL)
    for _ in range(3):
        started = time.monotonic()
        with pytest.raises(ServerDiedError) as caught:
            await client.chat.completions.create(model=client.model, messages=QUESTION)
        assert time.monotonic() - started < 1.5
    error = caught.value
    assert isinstance(error, ProviderError) and not is_transient(error)
    assert error.returncode == -signal.SIGKILL
    assert str(info.log_path) in str(error) and "exit code -9" in str(error)
    assert client.api_key not in str(error)
    await handle.teardown()
    assert records(tmp_path / "logs") == []


async def test_server_death_is_raised_where_the_sdk_wraps_transport_errors(tmp_path: Path) -> None:
    """openai releases up to 1.89 at least wrap every error of ``send`` in APIConnectionError."""
    openai = pytest.importorskip("openai")
    provider = LocalModelProvider(log_dir=tmp_path / "logs", stop_grace=1.0)
    handle = await provider.setup("dotevals-test")
    client = handle.model
    send = client._client.send

    async def send_as_old_releases(request: Any, **options: Any) -> Any:
        try:
            return await send(request, **options)
        except Exception as exc:
            raise openai.APIConnectionError(request=request) from exc

    client._client.send = send_as_old_releases
    await client.chat.completions.create(model=client.model, messages=QUESTION)
    os.killpg(provider.server_info(handle.resource_id).pgid, signal.SIGKILL)
    for _ in range(2):  # the request in flight at the death, and one made after it
        with pytest.raises(ServerDiedError) as caught:
            await client.chat.completions.create(model=client.model, messages=QUESTION)
        assert caught.value.__cause__ is None and caught.value.__suppress_context__
    await handle.teardown()


async def test_rows_after_server_death_record_small_errors_and_resume(tmp_path: Path) -> None:
    """Every row after the death gets its own short error (no traceback that grows per row)."""
    provider = LocalModelProvider(log_dir=tmp_path / "logs", stop_grace=1.0)
    handle = await provider.setup("dotevals-test")
    info = provider.server_info(handle.resource_id)
    rows = [(f"What is {i}+1?", str(i + 1)) for i in range(60)]
    killed: list[bool] = []

    @dotevals.foreach("q,a", rows)
    async def ask(q: str, a: str, client: Any) -> bool:
        if q == "What is 10+1?" and not killed:
            killed.append(True)
            os.killpg(info.pgid, signal.SIGKILL)
        response = await client.chat.completions.create(
            model=client.model, messages=[{"role": "user", "content": q}]
        )
        return bool(response.choices[0].message.content == a)

    store = f"json://{tmp_path / 'store'}"
    first = await dotevals.run_async(
        ask, experiment="e", storage=store, progress=False, client=handle.model
    )
    await handle.teardown()
    errors = [r.error for r in first.records if r.error is not None]
    assert errors and {e.type for e in errors} == {"ServerDiedError"}
    sizes = [len(e.traceback) for e in errors]
    assert max(sizes) < 2 * min(sizes), sizes

    again = await provider.setup("dotevals-test")
    second = await dotevals.run_async(
        ask, experiment="e", storage=store, progress=False, client=again.model
    )
    await again.teardown()
    assert second.summary()["total"] == len(rows) and second.summary()["errors"] == 0


async def test_cached_answers_are_shared_only_by_servers_launched_alike(tmp_path: Path) -> None:
    """The port changes per run; the command and environment name what a server serves."""
    cache = dotevals.cache.configure(tmp_path / "cache.sqlite")
    assert cache is not None

    async def ask(provider: LocalModelProvider) -> None:
        handle = await provider.setup("dotevals-test")
        await handle.model.chat.completions.create(model=handle.model.model, messages=QUESTION)
        await handle.teardown()

    try:
        await ask(LocalModelProvider(log_dir=tmp_path, stop_grace=1.0))
        await ask(LocalModelProvider(log_dir=tmp_path, stop_grace=1.0))  # same launch: a hit
        await ask(LocalModelProvider(latency=0.001, log_dir=tmp_path, stop_grace=1.0))
        assert (cache.hits, cache.misses) == (1, 2)
    finally:
        dotevals.cache.configure(None)


# -- never leak ---------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["family", "stubborn", "local"])
def test_sigkilled_runner_leaks_nothing(
    kind: str, runner_script: Callable[[str], subprocess.Popen[str]]
) -> None:
    runner = runner_script(kind)
    server = read_server(runner)
    members = family_of(server["pgid"], 1 if kind == "local" else 3)
    watchdogs = [p for p in psutil.Process(runner.pid).children() if p.pid != server["pid"]]
    assert len(watchdogs) == 1
    assert os.getpgid(watchdogs[0].pid) != server["pgid"]  # not in the group it must kill
    runner.send_signal(signal.SIGKILL)
    runner.wait()
    assert wait_for(lambda: not any(alive(pid) for pid in members), 5), [
        pid for pid in members if alive(pid)
    ]
    assert wait_for(lambda: not alive(watchdogs[0].pid), 5)


async def test_next_setup_reaps_orphans_of_a_dead_runner(
    runner_script: Callable[[str], subprocess.Popen[str]],
    family_provider: Callable[..., LocalServerProvider],
    tmp_path: Path,
) -> None:
    runner = runner_script("family")
    server = read_server(runner)
    members = family_of(server["pgid"])
    [record] = records(tmp_path / "logs")
    # the watchdog fails too: only the death signal and the record are left
    os.kill(record["watchdog_pid"], signal.SIGKILL)
    runner.send_signal(signal.SIGKILL)
    runner.wait()
    assert wait_for(lambda: not alive(server["pid"]), 2)  # PR_SET_PDEATHSIG
    time.sleep(0.3)
    orphans = {pid for pid in members if alive(pid)}
    assert len(orphans) == 2  # the child and grandchild outlived their parent

    handle = await family_provider().setup("next-session")
    assert wait_for(lambda: not any(alive(pid) for pid in orphans), 5)
    [live] = records(tmp_path / "logs")
    assert live["runner_pid"] == os.getpid()
    # a record whose runner is alive is never reaped
    other = await family_provider().setup("another")
    assert alive(live["pid"]) and live["pid"] != record["pid"]
    await other.teardown()
    await handle.teardown()
    assert records(tmp_path / "logs") == []


# -- under pytest -------------------------------------------------------------------------------

PYTEST_CONFTEST = """
import json, sys
import pytest
from dotevals.providers import LocalServerProvider

@pytest.fixture(scope="session")
async def family_server():
    provider = LocalServerProvider(
        [sys.executable, {family!r}, "{{port}}", *{extra!r}], health_path="/health", stop_grace=1.0
    )
    provider.progress_every = 0.5
    handle = await provider.setup("victim")
    info = provider.server_info(handle.resource_id)
    with open("server.json", "w") as out:
        json.dump({{"pid": info.pid, "pgid": info.pgid, "log": str(info.log_path)}}, out)
    yield handle.model
    await handle.teardown()
"""

PYTEST_EVAL = """
import asyncio
from dotevals import foreach

@foreach("x", range({rows}))
async def eval_uses_server(x, family_server):
    await asyncio.sleep({sleep})
    return True
"""


def pytest_with_server(
    pytester: pytest.Pytester, family: Path, rows: int, sleep: float, *extra: str
) -> list[str]:
    pytester.makeconftest(PYTEST_CONFTEST.format(family=str(family), extra=list(extra)))
    pytester.makepyfile(eval_server=PYTEST_EVAL.format(rows=rows, sleep=sleep))
    return [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--storage", "json://store"]


def test_start_up_progress_shows_on_the_terminal_and_logs_go_under_the_store(
    pytester: pytest.Pytester, family: Path
) -> None:
    argv = pytest_with_server(pytester, family, 2, 0.0, "--slow")
    result = pytester.run(*argv, timeout=60)
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(
        [
            "Starting the local server for 'victim' on port * (log: *store/logs/local-victim-*)",
            "still waiting for the local server for 'victim' on http://127.0.0.1:*/health *",
        ]
    )
    server = json.loads((pytester.path / "server.json").read_text())
    log = Path(server["log"])
    assert log.parent == pytester.path / "store" / "logs" and log.is_file()
    assert not alive(server["pid"])


def test_sigkilled_pytest_session_leaks_no_server(pytester: pytest.Pytester, family: Path) -> None:
    """SIGKILL the pytest process mid-run: the server, its child and grandchild die too."""
    argv = pytest_with_server(pytester, family, 100, 30.0)  # still running when killed
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([SRC, os.environ.get("PYTHONPATH", "")])}
    runner = subprocess.Popen(
        argv, cwd=pytester.path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        info = pytester.path / "server.json"
        assert wait_for(info.exists, 30), "the session never started its server"
        time.sleep(0.2)  # the file is written; let the rows start
        server = json.loads(info.read_text())
        members = family_of(server["pgid"])
        runner.send_signal(signal.SIGKILL)
        runner.wait()
        assert wait_for(lambda: not any(alive(pid) for pid in members), 5), [
            pid for pid in members if alive(pid)
        ]
    finally:
        if runner.poll() is None:
            runner.kill()
            runner.wait()


def test_session_defaults_take_a_log_dir_as_text() -> None:
    assert SessionDefaults(log_dir="logs").log_dir == Path("logs")
    assert SessionDefaults().log_dir is None
