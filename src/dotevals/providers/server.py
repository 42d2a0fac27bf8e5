"""Local model servers as shared resources: start, wait until healthy, share, stop, never leak.

:class:`LocalServerProvider` runs an OpenAI-compatible server command (vLLM, the dotevals test
server, anything that answers ``/v1/chat/completions``) once per model and config, and hands out
``openai.AsyncOpenAI`` clients bound to it. Subclasses only describe the command.

A server never outlives its runner, even one killed with SIGKILL: it runs under the one process
supervisor (:mod:`dotevals.providers._supervisor`), in its own process group with a
parent-death signal, a watchdog and an on-disk record under ``<log_dir>/servers/``; the first
``setup`` of a later provider stops whatever is left of servers whose runner is dead.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import re
import secrets
import socket
import subprocess
import sys
import threading
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from dotevals.cache import SCOPE_HEADER, http_library
from dotevals.errors import ProviderError, ServerStartError
from dotevals.providers import _supervisor
from dotevals.providers._client import default_http_client, make_client, wrap_transports
from dotevals.providers._pool import SharedResourceProvider, resource_key
from dotevals.providers._supervisor import MASK, NotReady, ProcessExited, Supervised

if TYPE_CHECKING:
    from openai import AsyncOpenAI

__all__ = [
    "LocalServerProvider",
    "ServerDiedError",
    "ServerInfo",
    "SessionDefaults",
    "config_flags",
    "next_free_port",
    "pick_free_port",
    "using_session_defaults",
]

logger = logging.getLogger(__name__)

#: Environment variable that moves the directory of server logs and records.
LOG_DIR_ENV = "DOTEVALS_LOG_DIR"
#: The API key a client gets when its server takes none.
DUMMY_API_KEY = "EMPTY"

_TAIL_LINES = 50
_PLACEHOLDER = re.compile(r"\{(port|host|model|api_key)\}")
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")
_DEATH_WAIT = 0.5


@dataclass(frozen=True)
class SessionDefaults:
    """What a session (the pytest plugin's, say) gives every local server started in it.

    Attributes:
        log_dir: where logs go when neither ``log_dir`` nor ``$DOTEVALS_LOG_DIR`` says.
        notify: writes one line of start-up progress where the user sees it.
    """

    log_dir: Path | None = None
    notify: Callable[[str], None] | None = None

    def __post_init__(self) -> None:
        if self.log_dir is not None and not isinstance(self.log_dir, Path):
            object.__setattr__(self, "log_dir", Path(self.log_dir))  # a str given


#: The defaults of the session this code runs in: set only for the span of a ``with``.
_SESSION: ContextVar[SessionDefaults | None] = ContextVar("dotevals_session_defaults", default=None)


@contextmanager
def using_session_defaults(defaults: SessionDefaults) -> Iterator[None]:
    """Servers started inside the ``with`` (and tasks made in it) take ``defaults``.

    The pytest plugin wraps its test loop in one, so that servers log under the store root
    (``<root>/logs``) and show progress on pytest's terminal, where output captured from
    fixtures would otherwise hide it. The previous defaults are back on leaving.
    """
    token = _SESSION.set(defaults)
    try:
        yield
    finally:
        _SESSION.reset(token)


# Ports handed out in this process are never handed out again, even once their server stopped.
_PORTS_LOCK = threading.Lock()
_PORTS_HANDED_OUT: set[int] = set()


def _can_bind(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def pick_free_port(host: str = "127.0.0.1") -> int:
    """A port the OS says is free on ``host``, never one handed out before in this process."""
    with _PORTS_LOCK:
        for _ in range(1000):
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                sock.bind((host, 0))
                port: int = sock.getsockname()[1]
            if port not in _PORTS_HANDED_OUT:
                _PORTS_HANDED_OUT.add(port)
                return port
    raise OSError(f"no free port found on {host}")


def next_free_port(base: int, host: str = "127.0.0.1") -> int:
    """The first port from ``base`` up that is free on ``host`` and not handed out before."""
    with _PORTS_LOCK:
        for port in range(base, 65536):
            if port not in _PORTS_HANDED_OUT and _can_bind(host, port):
                _PORTS_HANDED_OUT.add(port)
                return port
    raise OSError(f"no free port on {host} from {base} up")


def config_flags(config: Mapping[str, Any]) -> list[str]:
    """Command-line flags for ``config``: ``max_model_len=2048`` gives ``--max-model-len 2048``.

    True gives a bare flag, False and None nothing, a list or tuple one value after another.
    """
    flags: list[str] = []
    for key, value in config.items():
        if value is None or value is False:
            continue
        flags.append("--" + key.replace("_", "-"))
        if isinstance(value, (list, tuple)):
            flags.extend(str(item) for item in value)
        elif value is not True:
            flags.append(str(value))
    return flags


def _fill(template: Sequence[str], values: Mapping[str, str]) -> list[str]:
    """``template`` with its placeholders replaced, in one pass (values are never re-read)."""
    return [_PLACEHOLDER.sub(lambda match: values[match[1]], part) for part in template]


def _new_api_key() -> str:
    """A random API key that no command-line parser can take for an option."""
    return "sk-" + secrets.token_urlsafe(32)


def _sanitize(name: str) -> str:
    return _UNSAFE_NAME.sub("_", name).strip("_") or "model"


class ServerDiedError(ProviderError):
    """A local model server died while in use: requests to it cannot succeed.

    Not transient: retrying against a dead port is pointless. ``returncode`` is the server's
    exit status (negative: killed by that signal) and ``log_path`` its log file.
    """

    def __init__(
        self,
        message: str,
        *,
        provider: str,
        spec: str,
        returncode: int | None,
        log_path: Path,
    ) -> None:
        super().__init__(message, provider=provider, spec=spec)
        self.returncode = returncode
        self.log_path = log_path


@dataclass(frozen=True)
class ServerInfo:
    """Where a running server is: its process, address, log file and (masked) command line."""

    pid: int
    pgid: int
    host: str
    port: int
    log_path: Path
    command: str
    uses_api_key: bool

    @property
    def base_url(self) -> str:
        """The server's OpenAI-compatible API root."""
        return f"http://{self.host}:{self.port}/v1"


@dataclass
class _Server:
    """One running server: its supervised process, address and client."""

    provider: str
    spec: str
    info: ServerInfo
    process: Supervised
    client: AsyncOpenAI | None = None
    _died: tuple[str, int | None] | None = field(default=None, repr=False)

    @property
    def returncode(self) -> int | None:
        """The exit status once the server process has exited, else None."""
        return self.process.returncode

    def log_tail(self) -> str:
        """The last lines of the server's log, API key masked."""
        return self.process.log_tail(_TAIL_LINES)

    def died_error(self) -> ServerDiedError:
        """A new error for a request to the dead server (its message is built once).

        Each request gets an exception of its own: re-raising one object would grow its
        traceback with every row it fails, and every record stores that traceback.
        """
        if self._died is None:
            code = self.returncode
            self._died = (
                f"the {self.provider} server for {self.spec!r} on port {self.info.port} died "
                f"(exit code {code}); requests to it cannot succeed.\n"
                f"  command: {self.info.command}\n  log: {self.info.log_path}\n"
                f"--- last {_TAIL_LINES} lines of the log ---\n{self.log_tail()}",
                code,
            )
        message, code = self._died
        return ServerDiedError(
            message,
            provider=self.provider,
            spec=self.spec,
            returncode=code,
            log_path=self.info.log_path,
        )

    def raise_if_dead(self) -> None:
        """Raise :class:`ServerDiedError` if the server process has exited."""
        if self.returncode is not None:
            raise self.died_error()

    async def wait_exit(self, timeout: float) -> None:
        """Wait up to ``timeout`` seconds for the server process to exit."""
        await self.process.wait_exit(timeout)


class _GuardedTransport(httpx.AsyncBaseTransport):
    """Fails requests at once with :class:`ServerDiedError` once the server process is dead."""

    def __init__(self, server: _Server, inner: httpx.AsyncBaseTransport) -> None:
        self._server = server
        self._inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self._server.raise_if_dead()
        try:
            return await self._inner.handle_async_request(request)
        except Exception as exc:
            # the transport error of the request's own library (httpx, or openai's httpx2)
            if not isinstance(exc, (httpx.TransportError, http_library(request).TransportError)):
                raise
            await self._server.wait_exit(_DEATH_WAIT)
            if self._server.returncode is not None:
                # the connection error is the death's echo: the record keeps the death (the
                # log's tail says why), as short as those of the requests made after it
                raise self._server.died_error() from None
            raise

    async def aclose(self) -> None:
        await self._inner.aclose()


class _DeathUnwrapped:
    """A client's ``request`` method that lets the guard's :class:`ServerDiedError` through.

    Older openai releases (1.89 among them) wrap every exception the HTTP client raises in
    ``APIConnectionError``, a transient error the engine would retry against the dead server;
    newer ones pass errors that are not the HTTP library's own through unchanged. The wrapped
    ``ServerDiedError`` (one per request) is raised again, as newer releases raise it.
    """

    def __init__(self, request: Callable[..., Awaitable[Any]]) -> None:
        self._request = request

    async def __call__(self, *args: Any, **options: Any) -> Any:
        try:
            return await self._request(*args, **options)
        except Exception as exc:
            died = _death_under(exc)
            if died is None:
                raise
            raise died from None


def _death_under(exc: BaseException) -> ServerDiedError | None:
    """The :class:`ServerDiedError` among the causes of ``exc`` (wrapped once or more)."""
    seen: set[int] = set()
    cause = exc.__cause__
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, ServerDiedError):
            return cause
        seen.add(id(cause))
        cause = cause.__cause__
    return None


def _http_client(server: _Server) -> Any:
    """The SDK's HTTP client (:func:`default_http_client`), its transport guarded by ``server``."""
    client = default_http_client(trust_env=False)  # the SDK's limits: 1000 connections
    wrap_transports(client, lambda inner: _GuardedTransport(server, inner))
    return client


def _note(message: str, notify: Callable[[str], None] | None) -> None:
    """A line of start-up progress: through ``notify`` (the session's terminal) if given, and
    in the log."""
    logger.info(message)
    if notify is not None:
        notify(message)


@contextmanager
def _progress(message: str, notify: Callable[[str], None] | None) -> Iterator[None]:
    """Start-up progress: lines through ``notify`` (pytest gives one), else a spinner on stderr
    when it is a terminal; quiet otherwise."""
    if notify is not None or not sys.stderr.isatty():
        _note(message, notify)
        yield
        return
    from rich.console import Console

    with Console(stderr=True).status(message):
        yield


class LocalServerProvider(SharedResourceProvider):
    """Runs a local OpenAI-compatible server per model and config, shared and leak-free.

    ``command`` is a list of strings in which ``{port}``, ``{host}``, ``{model}`` and
    ``{api_key}`` are filled in wherever they appear; ``setup(spec, **config)`` appends the
    config as flags (``max_model_len=2048`` gives ``--max-model-len 2048``). A random API key is
    made per server and given to the server where the command names ``{api_key}``; the client
    gets ``"EMPTY"`` otherwise. ``setup`` returns a handle whose ``model`` is an
    ``openai.AsyncOpenAI`` client with ``.model`` set to the spec.

    Args:
        command: The server command line, with placeholders.
        health_path: Polled until it answers 200 before the server counts as ready.
        startup_timeout: Seconds to wait for health before the server is killed.
        env: Variables added to the environment of the server.
        host: Address the server binds and the client connects to.
        log_dir: Directory of server logs (default ``$DOTEVALS_LOG_DIR``, else ``logs/`` in
            the store root of a pytest session, else ``.dotevals/logs`` in the working
            directory).
        stop_grace: Seconds between SIGTERM and SIGKILL when stopping.
        name: The provider's name in file names and errors.
        session_defaults: Where logs go (when ``log_dir`` does not say) and how start-up
            progress shows (default: those of the session it runs in, see
            :func:`using_session_defaults`).
    """

    #: The environment variable through which the server takes its API key, if it reads one
    #: (vLLM: ``VLLM_API_KEY``). The key then stays off the command line, where process
    #: listings and the server's own log of its arguments would show it.
    api_key_env: str | None = None
    #: Seconds between "still waiting" lines while a server loads.
    progress_every: float = 10.0

    def __init__(
        self,
        command: Sequence[str],
        *,
        health_path: str = "/v1/models",
        startup_timeout: float = 600.0,
        env: Mapping[str, str] | None = None,
        host: str = "127.0.0.1",
        log_dir: str | os.PathLike[str] | None = None,
        stop_grace: float = 10.0,
        name: str = "local",
        session_defaults: SessionDefaults | None = None,
    ) -> None:
        super().__init__()
        self.command = list(command)
        self.health_path = health_path if health_path.startswith("/") else "/" + health_path
        self.startup_timeout = startup_timeout
        self.env = dict(env or {})
        self.host = host
        self.stop_grace = stop_grace
        self.name = name
        self._log_dir = Path(log_dir) if log_dir is not None else None
        self._session_defaults = session_defaults
        self._servers: dict[str, _Server] = {}
        self._reaped = False

    # -- what subclasses describe -------------------------------------------------------------

    def build_command(self, spec: str, port: int, config: Mapping[str, Any]) -> list[str]:
        """The server command for ``spec`` on ``port``: placeholders may be left to fill."""
        return [*self.command, *config_flags(config)]

    def choose_port(self) -> int:
        """The port the next server listens on (a free one chosen by the OS by default)."""
        return pick_free_port(self.host)

    # -- where things go ----------------------------------------------------------------------

    @property
    def session_defaults(self) -> SessionDefaults:
        """The defaults given to the constructor, else those of the session it runs in."""
        if self._session_defaults is not None:
            return self._session_defaults
        return _SESSION.get() or SessionDefaults()

    @property
    def log_dir(self) -> Path:
        """Directory of server logs; records of running servers are in its ``servers/``."""
        if self._log_dir is not None:
            return self._log_dir
        from_env = os.environ.get(LOG_DIR_ENV)
        if from_env:
            return Path(from_env)
        return self.session_defaults.log_dir or Path.cwd() / ".dotevals" / "logs"

    def server_info(self, resource_id: str) -> ServerInfo:
        """Where the server behind ``resource_id`` (a handle's id) runs."""
        return self._servers[resource_id].info

    # -- the shared-resource hooks ------------------------------------------------------------

    async def create(self, resource_id: str, spec: str, config: dict[str, Any]) -> Any:
        """Start a server for ``spec`` and ``config``; return a client bound to it."""
        try:
            await self._reap_once()
            server = await self._start(spec, config)
        except ServerStartError:
            raise
        except (OSError, ImportError, ValueError, subprocess.SubprocessError) as exc:
            message = f"could not start the {self.name} server for {spec!r}: {exc}"
            raise ServerStartError(message, provider=self.name, spec=spec) from exc
        self._servers[resource_id] = server
        return server.client

    async def destroy(self, resource_id: str, model: Any) -> None:
        """Close the client, stop the server and its whole process group, drop its record."""
        server = self._servers.pop(resource_id, None)
        try:
            await model.close()
        finally:
            if server is not None:
                await server.process.stop()

    # -- start --------------------------------------------------------------------------------

    async def _reap_once(self) -> None:
        if not self._reaped:
            self._reaped = True
            grace = min(self.stop_grace, 5.0)
            await asyncio.to_thread(_supervisor.reap, self.log_dir / "servers", grace)

    async def _start(self, spec: str, config: Mapping[str, Any]) -> _Server:
        server = self._spawn(spec, config)
        started = False
        try:
            await self._wait_ready(server)
            key = server.process.secret if server.info.uses_api_key else DUMMY_API_KEY
            http_client = _http_client(server)
            scope = {SCOPE_HEADER: self._cache_scope(spec, config)}
            server.client = make_client(
                spec,
                base_url=server.info.base_url,
                api_key=key,
                http_client=http_client,
                default_headers=scope,
            )
            server.client.request = _DeathUnwrapped(server.client.request)  # type: ignore[method-assign]
            started = True
        finally:
            if not started:
                await server.process.stop()
        return server

    def _cache_scope(self, spec: str, config: Mapping[str, Any]) -> str:
        """What this server serves, for the response cache: the port changes every run.

        The command (with the port left out), the environment added and the config name it,
        so two providers that launch the same model differently never share answers.
        """
        served = [self.build_command(spec, 0, config), sorted(self.env.items())]
        digest = hashlib.sha256(json.dumps(served, default=repr).encode()).hexdigest()[:16]
        return f"{self.name}:{resource_key(spec, dict(config))}:{digest}"

    def server_env(self, secret: str, port: int, config: Mapping[str, Any]) -> dict[str, str]:
        """The environment of a server: this process's, ``env`` and the API key variable."""
        env = {**os.environ, **self.env}
        if self.api_key_env is not None:
            env[self.api_key_env] = secret
        return env

    def _spawn(self, spec: str, config: Mapping[str, Any]) -> _Server:
        port = self.choose_port()
        template = self.build_command(spec, port, config)
        uses_key = self.api_key_env is not None or any("{api_key}" in p for p in template)
        secret = _new_api_key()
        values = {"port": str(port), "host": self.host, "model": spec, "api_key": secret}
        shown = subprocess.list2cmdline(_fill(template, {**values, "api_key": MASK}))
        log_path = self.log_dir / f"{self.name}-{_sanitize(spec)}-{port}.log"
        process = _supervisor.start(
            _fill(template, values),
            log_path=log_path,
            records=self.log_dir / "servers",
            grace=self.stop_grace,
            env=self.server_env(secret, port, config),
            shown=shown,
            secret=secret if uses_key else "",
            port=port,
            label=spec,
        )
        info = ServerInfo(process.pid, process.pgid, self.host, port, log_path, shown, uses_key)
        logger.info("started %s (pid %d), log: %s", shown, process.pid, log_path)
        return _Server(self.name, spec, info, process)

    # -- ready --------------------------------------------------------------------------------

    async def _wait_ready(self, server: _Server) -> None:
        """Poll the health path until it answers 200, the process exits, or time runs out."""
        url = f"http://{server.info.host}:{server.info.port}{self.health_path}"
        secret = server.process.secret
        headers = {"Authorization": f"Bearer {secret}"} if secret else {}
        timeout = httpx.Timeout(1.0, connect=0.5)
        message = (
            f"Starting the {self.name} server for {server.spec!r} on port {server.info.port} "
            f"(log: {server.info.log_path})"
        )

        notify = self.session_defaults.notify

        def still_waiting(waited: float) -> None:
            _note(
                f"still waiting for the {self.name} server for {server.spec!r} on {url} "
                f"({waited:.0f} s of {self.startup_timeout:g} s; log: {server.info.log_path})",
                notify,
            )

        async with httpx.AsyncClient(timeout=timeout, headers=headers, trust_env=False) as http:
            with _progress(message, notify):
                try:
                    await server.process.wait_ready(
                        lambda: _healthy(http, url),
                        self.startup_timeout,
                        on_wait=still_waiting,
                        every=self.progress_every,
                    )
                except ProcessExited as exc:
                    reason = f"exited with code {exc.returncode} before it became healthy"
                    raise self._start_error(server, reason) from None
                except NotReady:
                    raise self._start_error(server, self._timeout_reason(url)) from None

    def _timeout_reason(self, url: str) -> str:
        timeout = self.startup_timeout
        return (
            f"did not answer 200 on {url} within {timeout:g} s and was stopped; if it was still "
            f"loading the model, raise startup_timeout (e.g. "
            f"{type(self).__name__}(startup_timeout={2 * timeout:g}))"
        )

    def _start_error(self, server: _Server, reason: str) -> ServerStartError:
        message = (
            f"the {self.name} server for {server.spec!r} {reason}.\n"
            f"  command: {server.info.command}\n  log: {server.info.log_path}\n"
            f"--- last {_TAIL_LINES} lines of the log ---\n{server.log_tail()}"
        )
        return ServerStartError(message, provider=self.name, spec=server.spec)


async def _healthy(http: httpx.AsyncClient, url: str) -> bool:
    try:
        response = await http.get(url)
    except httpx.HTTPError:
        return False
    return response.status_code == 200
