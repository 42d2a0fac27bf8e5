"""A small, fast, OpenAI-compatible HTTP server on asyncio streams (stdlib only).

It speaks HTTP/1.1 with keep-alive and ``Content-Length`` bodies, which is all the
``openai`` SDK (through httpx) needs, and answers with the deterministic model of
:func:`dotevals.testing.answer`. Knobs for latency and injected errors make it a stand-in
for a real provider in the demo, the tests and the benchmarks.

Endpoints: ``GET /health``, ``GET /v1/models``, ``POST /v1/chat/completions``,
``POST /v1/completions``, Anthropic's ``POST /v1/messages`` (all three with optional
``stream: true``), ``GET /stats`` and ``POST /stats/reset``. Completion requests honour two
optional request headers: ``X-Dotevals-Latency: SECONDS`` overrides the latency, and
``X-Dotevals-Status: CODE`` forces the answer's status (``200`` forces success, ``4xx``/``5xx``
an error).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import logging
import math
import os
import re
import secrets
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, fields
from fractions import Fraction
from http import HTTPStatus
from typing import Any

from dotevals._converters import checked
from dotevals.testing._model import answer

__all__ = ["DEFAULT_MODEL", "ServerSettings", "run_server", "serve"]

DEFAULT_MODEL = "dotevals-test"
"""The model name served when none is given."""

_MAX_HEAD_BYTES = 64 * 1024
_MAX_BODY_BYTES = 32 * 1024 * 1024
_MAX_CHOICES = 128
_BACKLOG = 2048
_UNCOUNTED_PATHS = frozenset({"/stats", "/stats/reset"})
_PIECES = re.compile(r"(?<=\s)(?=\S)")
_ERRORS = (429, 500, 503, 529)
_ERROR_KINDS: dict[int, tuple[str, str | None]] = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    404: ("invalid_request_error", "not_found"),
    405: ("invalid_request_error", "method_not_allowed"),
    413: ("invalid_request_error", "request_too_large"),
    429: ("requests", "rate_limit_exceeded"),
}

_logger = logging.getLogger(__name__)

Json = dict[str, Any]
ReadyCallback = Callable[[str, int], None]


_non_negative = checked(
    "_non_negative", float, lambda value: math.isfinite(value) and value >= 0, "a number >= 0"
)
_fraction = checked("_fraction", float, lambda value: 0 <= value <= 1, "between 0 and 1")
_positive = checked("_positive", int, lambda value: value >= 1, "a whole number >= 1")
_port = checked("_port", int, lambda value: 0 <= value <= 65535, "between 0 and 65535")


def _knob(flag: str, help: str, **argparse_options: Any) -> Any:
    """Metadata of a setting: its command-line flag and how argparse reads it."""
    return {"flag": flag, "help": help, **argparse_options}


@dataclass(frozen=True)
class ServerSettings:
    """The test server's knobs, declared once: ``serve``, the command line and
    :class:`~dotevals.testing.ServerProcess` all read them from here.

    Attributes:
        latency: Seconds each completion request waits before answering.
        error_rate: Fraction in [0, 1] of completion requests answered with an error; the
            k-th request fails when ``floor(k * rate) != floor((k - 1) * rate)``.
        error_status: The status of injected errors (429, 500, 503 or 529).
        retry_after: Seconds sent as ``Retry-After`` with injected errors; None omits it.
        api_key: When set, ``/v1/*`` requests need ``Authorization: Bearer <api_key>`` (or
            Anthropic's ``x-api-key: <api_key>``).
        capacity: When set, at most this many completion requests are served at once and the
            rest wait their turn, so latency rises once more are in flight (a saturated
            inference server, such as vLLM with a full batch).
        model_names: The names listed by ``/v1/models`` (any name is accepted).
    """

    latency: float = field(
        default=0.0,
        metadata=_knob("--latency", "seconds per completion request", type=_non_negative),
    )
    error_rate: float = field(
        default=0.0,
        metadata=_knob("--error-rate", "fraction of requests that fail", type=_fraction),
    )
    error_status: int = field(
        default=429,
        metadata=_knob("--error-status", "status of injected errors", type=int, choices=_ERRORS),
    )
    retry_after: float | None = field(
        default=None,
        metadata=_knob("--retry-after", "Retry-After seconds on errors", type=_non_negative),
    )
    api_key: str | None = field(
        default=None,
        metadata=_knob(
            "--api-key", "require this key on /v1/* (default: $VLLM_API_KEY, $LLAMA_API_KEY)"
        ),
    )
    capacity: int | None = field(
        default=None,
        metadata=_knob("--capacity", "requests served at once; others queue", type=_positive),
    )
    model_names: tuple[str, ...] = (DEFAULT_MODEL,)

    def argv(self) -> list[str]:
        """The command-line flags that give these settings (those left at their default: none)."""
        args: list[str] = []
        for knob in fields(self):
            value = getattr(self, knob.name)
            if "flag" in knob.metadata and value != knob.default:
                args += [knob.metadata["flag"], repr(value) if isinstance(value, float) else value]
        for name in self.model_names if self.model_names != (DEFAULT_MODEL,) else ():
            args += ["--model", name]
        return [str(arg) for arg in args]


def _add_settings(parser: argparse.ArgumentParser) -> None:
    """One option per :class:`ServerSettings` knob that has a flag."""
    for knob in fields(ServerSettings):
        options = dict(knob.metadata)
        if options:
            parser.add_argument(
                options.pop("flag"), dest=knob.name, default=knob.default, **options
            )


@dataclass(slots=True)
class _Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    keep_alive: bool


@dataclass
class _Stats:
    requests: int = 0
    by_path: dict[str, int] = field(default_factory=dict)
    errors_injected: int = 0
    completions: int = 0
    in_flight: int = 0
    max_in_flight: int = 0
    serving: int = 0
    max_serving: int = 0
    connections: int = 0

    def snapshot(self) -> Json:
        return {
            "requests": self.requests,
            "by_path": dict(self.by_path),
            "errors_injected": self.errors_injected,
            "completions": self.completions,
            "in_flight": self.in_flight,
            "max_in_flight": self.max_in_flight,
            "max_serving": self.max_serving,
            "connections": self.connections,
        }

    def reset(self) -> None:
        self.requests = self.errors_injected = self.completions = self.connections = 0
        self.by_path = {}
        self.max_in_flight = self.in_flight
        self.max_serving = self.serving


class _HTTPError(Exception):
    """An error answered to the client as an OpenAI-style error body."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        param: str | None = None,
        headers: Sequence[tuple[str, str]] = (),
        close: bool = False,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.headers = headers
        self.close = close

    def payload(self) -> Json:
        kind, code = _ERROR_KINDS.get(self.status, ("server_error", None))
        return {"error": {"message": self.message, "type": kind, "param": self.param, "code": code}}


# --------------------------------------------------------------------------- HTTP encoding


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


def _head(status: int, headers: Sequence[tuple[str, str]], keep_alive: bool) -> bytes:
    lines = [f"HTTP/1.1 {status} {_reason(status)}"]
    lines.extend(f"{name}: {value}" for name, value in headers)
    lines.append("Connection: keep-alive" if keep_alive else "Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _json_response(
    status: int, payload: object, keep_alive: bool, headers: Sequence[tuple[str, str]] = ()
) -> bytes:
    body = json.dumps(payload, separators=(",", ":")).encode()
    base = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    return _head(status, [*base, *headers], keep_alive) + body


def _sse_chunk(event: object) -> bytes:
    data = b"data: " + json.dumps(event, separators=(",", ":")).encode() + b"\n\n"
    return b"%x\r\n%s\r\n" % (len(data), data)


_SSE_HEADERS = (
    ("Content-Type", "text/event-stream"),
    ("Cache-Control", "no-cache"),
    ("Transfer-Encoding", "chunked"),
)
_SSE_DONE = b"data: [DONE]\n\n"
_SSE_END = b"%x\r\n%s\r\n0\r\n\r\n" % (len(_SSE_DONE), _SSE_DONE)


# --------------------------------------------------------------------------- HTTP decoding


async def _read_request(reader: asyncio.StreamReader) -> _Request | None:
    """Reads one request; returns None when the client closed the connection cleanly."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        if exc.partial.strip():
            raise _HTTPError(400, "incomplete request head", close=True) from None
        return None
    except asyncio.LimitOverrunError:
        raise _HTTPError(400, "request head too large", close=True) from None
    method, path, version, headers = _parse_head(head.lstrip(b"\r\n"))
    length = _content_length(headers)
    body = await reader.readexactly(length) if length else b""
    connection = headers.get("connection", "").lower()
    keep_alive = connection != "close" and (version != "HTTP/1.0" or connection == "keep-alive")
    return _Request(method, path, headers, body, keep_alive)


def _parse_head(head: bytes) -> tuple[str, str, str, dict[str, str]]:
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/"):
        raise _HTTPError(400, "malformed request line", close=True)
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name:
            headers[name.strip().lower()] = value.strip()
    method, target, version = parts
    return method, target.split("?", 1)[0], version, headers


def _content_length(headers: dict[str, str]) -> int:
    if "chunked" in headers.get("transfer-encoding", "").lower():
        raise _HTTPError(400, "chunked request bodies are not supported", close=True)
    try:
        length = int(headers.get("content-length", "0"))
    except ValueError:
        raise _HTTPError(400, "invalid Content-Length", close=True) from None
    if length < 0:
        raise _HTTPError(400, "invalid Content-Length", close=True)
    if length > _MAX_BODY_BYTES:
        raise _HTTPError(413, "request body too large", close=True)
    return length


# --------------------------------------------------------------------------- request bodies


def _json_body(request: _Request) -> Json:
    try:
        body = json.loads(request.body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise _HTTPError(400, f"We could not parse the JSON body of your request: {exc}") from None
    if not isinstance(body, dict):
        raise _HTTPError(400, "The request body must be a JSON object.")
    return body


def _optional_int(body: Json, *names: str, minimum: int = 0) -> int | None:
    for name in names:
        value = body.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise _HTTPError(400, f"'{name}' must be an integer >= {minimum}", param=name)
        return value
    return None


def _choice_count(body: Json) -> int:
    count = _optional_int(body, "n", minimum=1) or 1
    if count > _MAX_CHOICES:
        raise _HTTPError(400, f"'n' must be at most {_MAX_CHOICES}", param="n")
    return count


def _content_text(content: object) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = (part.get("text") for part in content if isinstance(part, dict))
        return " ".join(part for part in parts if isinstance(part, str))
    return ""


def _count_tokens(text: str) -> int:
    return len(text.split())


def _generate(prompt: str, max_tokens: int | None) -> tuple[str, str]:
    """Returns the model's answer and its finish reason, truncated to max_tokens words."""
    text = answer(prompt)
    if max_tokens is not None:
        words = text.split()
        if len(words) > max_tokens:
            return " ".join(words[:max_tokens]), "length"
    return text, "stop"


def _chat_prompt(body: Json) -> tuple[str, int]:
    """Returns the last user message and the prompt's token count."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise _HTTPError(400, "'messages' must be a non-empty list", param="messages")
    if not all(isinstance(message, dict) for message in messages):
        raise _HTTPError(400, "each message must be an object", param="messages")
    texts = [_content_text(message.get("content")) for message in messages]
    pairs = zip(messages, texts, strict=True)
    users = [text for message, text in pairs if message.get("role") == "user"]
    return (users[-1] if users else ""), sum(_count_tokens(text) for text in texts)


def _completion_prompts(body: Json) -> list[str]:
    prompt = body.get("prompt")
    if isinstance(prompt, str):
        return [prompt]
    if isinstance(prompt, list) and prompt and all(isinstance(item, str) for item in prompt):
        return list(prompt)
    raise _HTTPError(400, "'prompt' must be a string or a list of strings", param="prompt")


def _usage(prompt_tokens: int, texts: Sequence[str]) -> Json:
    completion_tokens = sum(_count_tokens(text) for text in texts)
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def _pieces(text: str) -> list[str]:
    """Splits text into stream deltas (one word with its leading whitespace each)."""
    return _PIECES.split(text)


# --------------------------------------------------------------------------- the application

Handler = Callable[[_Request], Awaitable[bytes]]
Choice = tuple[str, str]  # (text, finish_reason)


class _App:
    """Routes requests, keeps the counters, and tracks open connections."""

    def __init__(self, config: ServerSettings) -> None:
        self.config = config
        self.stats = _Stats()
        self.tasks: set[asyncio.Task[Any]] = set()
        rate = Fraction(config.error_rate).limit_denominator(1_000_000)
        self._rate = (rate.numerator, rate.denominator)
        self._auth = None if config.api_key is None else f"Bearer {config.api_key}"
        self._ids = itertools.count(1)
        #: Requests served at once when ``capacity`` is set; the rest queue (a full batch).
        self._capacity = asyncio.Semaphore(config.capacity) if config.capacity else None
        self._id_prefix = secrets.token_hex(4)
        self._routes: dict[str, tuple[str, Handler]] = {
            "/health": ("GET", self._health),
            "/v1/models": ("GET", self._models),
            "/v1/chat/completions": ("POST", self._chat),
            "/v1/completions": ("POST", self._completions),
            "/v1/messages": ("POST", self._messages),
            "/stats": ("GET", self._get_stats),
            "/stats/reset": ("POST", self._reset_stats),
        }

    async def handle_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        """Serves the requests of one connection until it closes (asyncio callback)."""
        self.stats.connections += 1
        task = asyncio.current_task()
        if task is not None:
            self.tasks.add(task)
        try:
            await self._serve_connection(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the client went away mid-request
        finally:
            if task is not None:
                self.tasks.discard(task)
            writer.close()

    async def _serve_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        while True:
            try:
                request = await _read_request(reader)
            except _HTTPError as error:
                writer.write(_json_response(error.status, error.payload(), keep_alive=False))
                await writer.drain()
                return
            if request is None:
                return
            writer.write(await self._respond(request))
            await writer.drain()
            if not request.keep_alive:
                return

    async def _respond(self, request: _Request) -> bytes:
        try:
            return await self._route(request)
        except _HTTPError as error:
            keep_alive = request.keep_alive and not error.close
            return _json_response(error.status, error.payload(), keep_alive, error.headers)
        except Exception:
            _logger.exception("dotevals-testing: internal error on %s", request.path)
            internal = _HTTPError(500, "internal server error")
            return _json_response(500, internal.payload(), request.keep_alive)

    async def _route(self, request: _Request) -> bytes:
        path = request.path
        if path not in _UNCOUNTED_PATHS:
            self.stats.requests += 1
            self.stats.by_path[path] = self.stats.by_path.get(path, 0) + 1
        route = self._routes.get(path)
        if route is None:
            raise _HTTPError(404, f"Invalid URL ({request.method} {path})")
        if request.method != route[0]:
            raise _HTTPError(405, f"Method {request.method} not allowed on {path}")
        if self._auth is not None and path.startswith("/v1/"):
            self._check_auth(request)
        return await route[1](request)

    def _check_auth(self, request: _Request) -> None:
        given = request.headers.get("authorization")
        if given is None and "x-api-key" in request.headers:  # Anthropic's header
            given = f"Bearer {request.headers['x-api-key']}"
        if given is None:
            raise _HTTPError(401, "You didn't provide an API key.")
        if not secrets.compare_digest(given.encode(), str(self._auth).encode()):
            raise _HTTPError(401, "Incorrect API key provided.")

    # ----------------------------------------------------------------------- simple routes

    async def _health(self, request: _Request) -> bytes:
        return _json_response(200, {"status": "ok"}, request.keep_alive)

    async def _models(self, request: _Request) -> bytes:
        data = [
            {"id": name, "object": "model", "created": 0, "owned_by": "dotevals"}
            for name in self.config.model_names
        ]
        return _json_response(200, {"object": "list", "data": data}, request.keep_alive)

    async def _get_stats(self, request: _Request) -> bytes:
        return _json_response(200, self.stats.snapshot(), request.keep_alive)

    async def _reset_stats(self, request: _Request) -> bytes:
        self.stats.reset()
        return _json_response(200, self.stats.snapshot(), request.keep_alive)

    # ----------------------------------------------------------------------- completions

    async def _chat(self, request: _Request) -> bytes:
        body = _json_body(request)
        prompt, prompt_tokens = _chat_prompt(body)
        choices = await self._complete(request, body, [prompt])
        usage = _usage(prompt_tokens, [text for text, _ in choices])
        envelope = self._envelope(body, "chatcmpl", "chat.completion")
        if body.get("stream") is True:
            return self._chat_stream(request, body, envelope, choices, usage)
        envelope["choices"] = [
            {
                "index": index,
                "message": {"role": "assistant", "content": text, "refusal": None},
                "logprobs": None,
                "finish_reason": reason,
            }
            for index, (text, reason) in enumerate(choices)
        ]
        envelope["usage"] = usage
        return _json_response(200, envelope, request.keep_alive)

    async def _completions(self, request: _Request) -> bytes:
        body = _json_body(request)
        prompts = _completion_prompts(body)
        choices = await self._complete(request, body, prompts)
        prompt_tokens = sum(_count_tokens(prompt) for prompt in prompts)
        usage = _usage(prompt_tokens, [text for text, _ in choices])
        envelope = self._envelope(body, "cmpl", "text_completion")
        if body.get("stream") is True:
            return self._text_stream(request, body, envelope, choices, usage)
        envelope["choices"] = [
            {"index": index, "text": text, "logprobs": None, "finish_reason": reason}
            for index, (text, reason) in enumerate(choices)
        ]
        envelope["usage"] = usage
        return _json_response(200, envelope, request.keep_alive)

    async def _messages(self, request: _Request) -> bytes:
        """Anthropic's Messages API (``POST /v1/messages``), streamed or not."""
        body = _json_body(request)
        if _optional_int(body, "max_tokens", minimum=1) is None:
            raise _HTTPError(400, "max_tokens: Field required", param="max_tokens")
        prompt, prompt_tokens = _chat_prompt(body)
        prompt_tokens += _count_tokens(_content_text(body.get("system")))
        [(text, reason)] = await self._complete(request, {**body, "n": 1}, [prompt])
        envelope = self._envelope(body, "msg", "message")
        message = {
            "id": envelope["id"].replace("-", "_", 1),
            "type": "message",
            "role": "assistant",
            "model": envelope["model"],
            "content": [{"type": "text", "text": text}],
            "stop_reason": "max_tokens" if reason == "length" else "end_turn",
            "stop_sequence": None,
            "usage": {"input_tokens": prompt_tokens, "output_tokens": _count_tokens(text)},
        }
        if body.get("stream") is True:
            return _head(200, _SSE_HEADERS, request.keep_alive) + _message_events(message)
        return _json_response(200, message, request.keep_alive)

    async def _complete(self, request: _Request, body: Json, prompts: list[str]) -> list[Choice]:
        """Applies the knobs (errors, latency), then answers each prompt n times."""
        count = _choice_count(body)
        max_tokens = _optional_int(body, "max_completion_tokens", "max_tokens")
        latency = self._latency(request)
        self._maybe_fail(request)
        stats = self.stats
        stats.in_flight += 1
        stats.max_in_flight = max(stats.max_in_flight, stats.in_flight)
        try:
            if self._capacity is None:
                await self._serve(latency)
            else:
                async with self._capacity:
                    await self._serve(latency)
        finally:
            stats.in_flight -= 1
        return [_generate(prompt, max_tokens) for prompt in prompts for _ in range(count)]

    async def _serve(self, latency: float) -> None:
        stats = self.stats
        stats.serving += 1
        stats.max_serving = max(stats.max_serving, stats.serving)
        try:
            if latency > 0:
                await asyncio.sleep(latency)
        finally:
            stats.serving -= 1

    def _latency(self, request: _Request) -> float:
        header = request.headers.get("x-dotevals-latency")
        if header is None:
            return self.config.latency
        try:
            latency = float(header)
        except ValueError:
            latency = -1.0
        if not (math.isfinite(latency) and latency >= 0):
            raise _HTTPError(400, "X-Dotevals-Latency must be a number of seconds >= 0")
        return latency

    def _maybe_fail(self, request: _Request) -> None:
        """Raises the injected error for this request, if any (forced or by error rate)."""
        self.stats.completions += 1
        status = self._forced_status(request)
        if status is None:
            numerator, denominator = self._rate
            k = self.stats.completions
            if (k * numerator) // denominator == ((k - 1) * numerator) // denominator:
                return
            status = self.config.error_status
        elif status == 200:
            return
        self.stats.errors_injected += 1
        headers: list[tuple[str, str]] = []
        if self.config.retry_after is not None:
            headers.append(("Retry-After", f"{self.config.retry_after:g}"))
        message = f"Injected error {status} ({_reason(status)}) from dotevals-testing."
        raise _HTTPError(status, message, headers=headers)

    @staticmethod
    def _forced_status(request: _Request) -> int | None:
        header = request.headers.get("x-dotevals-status")
        if header is None:
            return None
        try:
            status = int(header)
        except ValueError:
            status = 0
        if status != 200 and not 400 <= status <= 599:
            raise _HTTPError(400, "X-Dotevals-Status must be 200 or a 4xx/5xx code")
        return status

    def _envelope(self, body: Json, prefix: str, kind: str) -> Json:
        model = body.get("model")
        return {
            "id": f"{prefix}-{self._id_prefix}{next(self._ids):x}",
            "object": kind,
            "created": int(time.time()),
            "model": model if isinstance(model, str) else self.config.model_names[0],
            "system_fingerprint": None,
        }

    # ----------------------------------------------------------------------- streaming

    def _chat_stream(
        self, request: _Request, body: Json, envelope: Json, choices: list[Choice], usage: Json
    ) -> bytes:
        envelope["object"] = "chat.completion.chunk"
        events: list[Json] = []
        for index, (text, reason) in enumerate(choices):
            deltas = [{"role": "assistant", "content": ""}]
            deltas.extend({"content": piece} for piece in _pieces(text))
            events.extend(_choice_event(index, {"delta": delta}) for delta in deltas)
            events.append(_choice_event(index, {"delta": {}, "finish_reason": reason}))
        return _stream(request, body, envelope, events, usage)

    def _text_stream(
        self, request: _Request, body: Json, envelope: Json, choices: list[Choice], usage: Json
    ) -> bytes:
        events: list[Json] = []
        for index, (text, reason) in enumerate(choices):
            pieces = _pieces(text)
            for position, piece in enumerate(pieces, start=1):
                final = reason if position == len(pieces) else None
                fields = {"text": piece, "logprobs": None, "finish_reason": final}
                events.append(_choice_event(index, fields))
        return _stream(request, body, envelope, events, usage)


def _message_events(message: Json) -> bytes:
    """A whole Messages API stream (named SSE events, chunked) for a finished ``message``."""
    text = message["content"][0]["text"]
    usage = message["usage"]
    start = {**message, "content": [], "stop_reason": None, "usage": {**usage, "output_tokens": 0}}
    events: list[tuple[str, Json]] = [
        ("message_start", {"message": start}),
        ("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}}),
    ]
    for piece in _pieces(text):
        delta = {"index": 0, "delta": {"type": "text_delta", "text": piece}}
        events.append(("content_block_delta", delta))
    events.append(("content_block_stop", {"index": 0}))
    stop = {"stop_reason": message["stop_reason"], "stop_sequence": None}
    output = {"output_tokens": usage["output_tokens"]}
    events += [("message_delta", {"delta": stop, "usage": output}), ("message_stop", {})]
    chunks = []
    for name, data in events:
        line = json.dumps({"type": name, **data}, separators=(",", ":"))
        payload = f"event: {name}\ndata: {line}\n\n".encode()
        chunks.append(b"%x\r\n%s\r\n" % (len(payload), payload))
    return b"".join(chunks) + b"0\r\n\r\n"


def _choice_event(index: int, fields: Json) -> Json:
    return {"choices": [{"index": index, "logprobs": None, "finish_reason": None, **fields}]}


def _stream(
    request: _Request, body: Json, envelope: Json, events: list[Json], usage: Json
) -> bytes:
    """Encodes a whole SSE response (chunked), adding the usage event when asked for."""
    options = body.get("stream_options")
    if isinstance(options, dict) and options.get("include_usage") is True:
        events.append({"choices": [], "usage": usage})
    chunks = [_sse_chunk({**envelope, **event}) for event in events]
    return _head(200, _SSE_HEADERS, request.keep_alive) + b"".join(chunks) + _SSE_END


# --------------------------------------------------------------------------- serving


async def serve(
    host: str = "127.0.0.1",
    port: int = 0,
    settings: ServerSettings | None = None,
    *,
    on_ready: ReadyCallback | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """Runs the server until ``stop`` is set or the process gets SIGTERM/SIGINT.

    Args:
        host: The address to bind.
        port: The port to bind; 0 picks a free one.
        settings: The knobs (latency, injected errors, API key, model names).
        on_ready: Called with the host and the bound port once the server listens.
        stop: An event that stops the server when set.
    """
    config = settings or ServerSettings()
    app = _App(config)
    if stop is None:
        stop = asyncio.Event()
    server = await asyncio.start_server(
        app.handle_connection, host, port, limit=_MAX_HEAD_BYTES, backlog=_BACKLOG
    )
    installed = _install_signal_handlers(stop)
    try:
        if on_ready is not None:
            on_ready(host, server.sockets[0].getsockname()[1])
        await stop.wait()
    finally:
        _remove_signal_handlers(installed)
        await _shutdown(server, app)


def _install_signal_handlers(stop: asyncio.Event) -> list[signal.Signals]:
    loop = asyncio.get_running_loop()
    installed: list[signal.Signals] = []
    for signum in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(signum, stop.set)
        except (NotImplementedError, RuntimeError, ValueError):
            continue  # not the main thread, or a platform without signal support
        installed.append(signum)
    return installed


def _remove_signal_handlers(installed: list[signal.Signals]) -> None:
    loop = asyncio.get_running_loop()
    for signum in installed:
        loop.remove_signal_handler(signum)


async def _shutdown(server: asyncio.Server, app: _App) -> None:
    server.close()
    tasks = list(app.tasks)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    with contextlib.suppress(ConnectionError):
        await server.wait_closed()


# --------------------------------------------------------------------------- command line


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m dotevals.testing",
        description="A small OpenAI-compatible test server with a deterministic model.",
        allow_abbrev=False,
    )
    add = parser.add_argument
    add("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    add("--port", type=_port, default=8000, help="port to bind; 0 picks a free one")
    _add_settings(parser)
    key_from_env = os.environ.get("VLLM_API_KEY") or os.environ.get("LLAMA_API_KEY")
    parser.set_defaults(api_key=key_from_env or None)
    add("--model", "-m", "--model-path", action="append", default=[], help="a model to serve")
    add("--served-model-name", nargs="+", default=None, help="names to serve (vLLM style)")
    ignored = parser.add_argument_group("accepted and ignored: it stands in for these servers")
    for flag in ("--dtype", "--max-model-len", "--tensor-parallel-size"):  # vLLM
        ignored.add_argument(flag)
    ignored.add_argument("--gpu-memory-utilization", type=float)
    for flag in ("--ctx-size", "--n-gpu-layers", "--tp-size", "--mem-fraction-static"):
        ignored.add_argument(flag)  # llama.cpp's llama-server, SGLang
    return parser


def _announce(host: str, port: int) -> None:
    shown = f"[{host}]" if ":" in host else host
    sys.stdout.write(f"dotevals-testing listening on http://{shown}:{port}\n")
    sys.stdout.flush()


def run_server(argv: Sequence[str] | None = None) -> int:
    """Parses the command line, then serves until SIGTERM or SIGINT.

    Args:
        argv: The arguments, without the program name; None reads ``sys.argv``.

    Returns:
        The process exit status (0 after a clean shutdown).
    """
    args = _build_parser().parse_args(argv)
    asyncio.run(serve(args.host, args.port, _settings_from(args), on_ready=_announce))
    return 0


def _settings_from(args: argparse.Namespace) -> ServerSettings:
    """The settings a parsed command line gives."""
    names = args.served_model_name or args.model or [DEFAULT_MODEL]
    knobs = {
        knob.name: getattr(args, knob.name) for knob in fields(ServerSettings) if knob.metadata
    }
    return ServerSettings(**knobs, model_names=tuple(names))
