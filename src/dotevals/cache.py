"""An opt-in cache of model responses, so that re-running an evaluation costs no requests.

It works at the HTTP layer: :class:`CachingTransport` wraps an ``httpx`` transport, and the
clients dotevals makes (:func:`dotevals.providers._client.make_client`) use it whenever a
cache is active, so evaluation code does not change::

    dotevals.cache.configure(".dotevals/cache.sqlite")   # what ``--cache`` does
    ...                                                  # run evaluations
    dotevals.cache.stats()                               # {"hits": 120, "misses": 0, ...}

A response is keyed on the whole request: the method, the URL and the request body as
canonical JSON (sorted keys), which holds the model name, the messages and every sampling
parameter; a different model or temperature is a different entry. Only successful (2xx)
responses are stored; errors never are, and streaming requests (``"stream": true``) pass
through uncached. Headers (the API key among them) are not part of the key.

A server whose address changes from run to run (a local server on a random port) can be
given a stable identity: a request header ``x-dotevals-cache-scope: NAME`` replaces the
scheme, host and port in the key (``NAME`` + path + query), so the runs share entries. Give
each distinct server (model and launch configuration) its own name.

The SDK clients dotevals hands out (:func:`dotevals.providers._client.make_client`) also
answer ``client.chat.completions.create(...)`` and ``client.completions.create(...)`` from
the cache before the SDK builds a request (:func:`call_key`: the keyword arguments as
canonical JSON, the model among them), so a hit skips the SDK's request building as well as
the server. Calls with ``extra_headers``, ``stream=True``, positional arguments or values
that are not plain JSON data take the HTTP path above.

The store is one SQLite file in WAL mode, safe to share between processes. A cache that
cannot be used (a corrupt or locked file, a directory without write access) never stops a
run: a :class:`CacheWarning` names the file and the fix, and requests go to the server.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import sys
import threading
import time
import warnings
from pathlib import Path
from typing import Any, Final

import httpx

from dotevals import _usage

__all__ = [
    "CacheWarning",
    "CachedResponse",
    "CachingTransport",
    "ResponseCache",
    "active",
    "call_key",
    "configure",
    "stats",
]

#: The SQLite busy timeout: how long a write waits for another process's write.
_BUSY_TIMEOUT_S: Final = 5.0
_KEY_VERSION: Final = "v1"
#: Response headers that describe one connection, not the response; not stored.
_HOP_HEADERS: Final = frozenset(
    {"connection", "keep-alive", "transfer-encoding", "content-length", "date"}
)
#: Marks a response that came from the cache.
CACHE_HEADER: Final = "x-dotevals-cache"
#: A request header that stands for the server's scheme, host and port in the cache key.
SCOPE_HEADER: Final = "x-dotevals-cache-scope"

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS responses (
    key TEXT PRIMARY KEY,
    method TEXT NOT NULL,
    url TEXT NOT NULL,
    status INTEGER NOT NULL,
    headers TEXT NOT NULL,
    body BLOB NOT NULL,
    created REAL NOT NULL
)
"""


class CacheWarning(UserWarning):
    """The response cache cannot be used; the run goes on without it."""


class CachedResponse:
    """A stored response: status, headers (without hop-by-hop ones) and the raw body.

    Attributes:
        status: the HTTP status (2xx).
        headers: ``(name, value)`` pairs as the server sent them.
        body: the body as received (still content-encoded, e.g. gzip).
    """

    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def to_response(self, request: httpx.Request) -> httpx.Response:
        """A fresh response to ``request`` with this status, headers and body.

        Args:
            request: the request answered; the response is of the same HTTP library
                (``httpx``, or ``httpx2`` which recent ``openai`` releases use).
        """
        headers = [*self.headers, (CACHE_HEADER, "hit")]
        return _response(request, self.status, headers, self.body)


def http_library(request: httpx.Request) -> Any:
    """The HTTP library ``request`` belongs to (``httpx`` or an API-compatible fork)."""
    module = sys.modules.get(type(request).__module__.partition(".")[0])
    return module if hasattr(module, "ByteStream") and hasattr(module, "Response") else httpx


def _response(
    request: httpx.Request,
    status: int,
    headers: list[tuple[str, str]],
    body: bytes,
    extensions: dict[str, Any] | None = None,
) -> httpx.Response:
    lib = http_library(request)
    response: httpx.Response = lib.Response(
        status,
        headers=headers,
        stream=lib.ByteStream(body),
        request=request,
        extensions=extensions,
    )
    return response


def request_key(method: str, url: str, body: bytes) -> str:
    """The cache key of a request: a SHA-256 of the method, URL and canonical JSON body.

    Args:
        method: the HTTP method.
        url: the full URL (base URL, path and query).
        body: the request body; JSON is canonicalized (sorted keys, no spaces), anything
            else is hashed as is.

    Returns:
        A hex digest.
    """
    try:
        canonical: Any = json.loads(body) if body else None
    except (ValueError, UnicodeDecodeError):
        canonical = {"raw_sha256": hashlib.sha256(body).hexdigest()}
    return _digest([_KEY_VERSION, method.upper(), url, canonical])


def _digest(parts: list[Any], *, allow_nan: bool = True) -> str:
    """SHA-256 of ``parts`` as canonical JSON (sorted keys, no spaces); raises for non-JSON."""
    blob = json.dumps(
        parts, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=allow_nan
    )
    return hashlib.sha256(blob.encode()).hexdigest()


def call_key(origin: str, endpoint: str, params: dict[str, Any]) -> str | None:
    """The cache key of an SDK call made with keyword ``params``, before any request exists.

    Args:
        origin: the client's base URL, or ``scope:NAME`` for a scoped server.
        endpoint: the API path called (``/chat/completions``).
        params: the call's keyword arguments.

    Returns:
        A hex digest, or None when a parameter is not plain JSON data (the call then goes
        through the SDK and is cached at the HTTP layer).
    """
    try:
        return _digest([_KEY_VERSION, "CALL", origin + endpoint, params], allow_nan=False)
    except (TypeError, ValueError):
        return None


def is_streaming(body: bytes) -> bool:
    """Whether a request body asks for a streamed answer (``"stream": true``)."""
    if b'"stream"' not in body:
        return False
    try:
        parsed = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return False
    return isinstance(parsed, dict) and parsed.get("stream") is True


def _warn(path: Path, problem: str) -> None:
    warnings.warn(
        CacheWarning(
            f"the response cache {str(path)!r} cannot be used ({problem}); running without "
            f"it. Delete the file (or give another path to --cache) to start a fresh cache."
        ),
        stacklevel=3,
    )


def _decode(row: tuple[int, str, bytes] | None) -> CachedResponse | None:
    """A stored row as a response; None for no row or one that does not decode."""
    if row is None:
        return None
    status, headers, body = row
    try:
        pairs = [(str(name), str(value)) for name, value in json.loads(headers)]
        raw = body.encode() if isinstance(body, str) else bytes(body)  # TEXT written by hand
        return CachedResponse(int(status), pairs, raw)
    except (ValueError, TypeError):
        return None


class ResponseCache:
    """Responses keyed on their requests, in one SQLite file (WAL mode).

    It never raises for a broken store: a file that cannot be opened or read gives a
    :class:`CacheWarning` once and the cache turns itself off (every lookup misses, nothing
    is stored). Safe to use from several threads and processes.

    Args:
        path: the SQLite file; its directory is created when missing.
        timeout: seconds a write waits for another process's write before the cache gives up.
    """

    def __init__(self, path: str | os.PathLike[str], *, timeout: float = _BUSY_TIMEOUT_S) -> None:
        self.path = Path(path)
        self.timeout = timeout
        self.hits = 0
        self.misses = 0
        self.writes = 0
        self.bypassed = 0
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._broken = False
        self._open()

    @property
    def enabled(self) -> bool:
        """Whether lookups and writes reach the store (false once broken or closed)."""
        return self._conn is not None

    def _open(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                self.path, timeout=self.timeout, check_same_thread=False, isolation_level=None
            )
        except (OSError, sqlite3.Error) as exc:
            self._disable(f"{type(exc).__name__}: {exc}")
            return
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute(_SCHEMA)
            conn.execute("SELECT count(*) FROM responses WHERE key = ''").fetchone()
        except sqlite3.Error as exc:
            conn.close()
            self._disable(f"{type(exc).__name__}: {exc}")
            return
        self._conn = conn

    def _disable(self, problem: str) -> None:
        """Turn the cache off after a store error, warning once."""
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except sqlite3.Error:
                pass  # it is broken already; nothing more to do with it
        if not self._broken:
            self._broken = True
            _warn(self.path, problem)

    def get(self, key: str, *, count_miss: bool = True) -> CachedResponse | None:
        """The response stored under ``key``, or None (counted as a hit or a miss).

        Args:
            key: a :func:`request_key` or a :func:`call_key`.
            count_miss: False when the caller goes on to ask the HTTP layer, which counts
                the request itself (so that each request is counted once).
        """
        found = _decode(self._fetch(key))
        if found is not None:
            _usage.hit()  # the row's latency is not the server's
        with self._lock:
            if found is not None:
                self.hits += 1
            elif count_miss:
                self.misses += 1
        return found

    def _fetch(self, key: str) -> tuple[int, str, bytes] | None:
        with self._lock:
            if self._conn is None:
                return None
            try:
                row: tuple[int, str, bytes] | None = self._conn.execute(
                    "SELECT status, headers, body FROM responses WHERE key = ?", (key,)
                ).fetchone()
            except sqlite3.Error as exc:
                self._disable(f"reading failed: {type(exc).__name__}: {exc}")
                return None
        return row

    def put(self, key: str, method: str, url: str, response: CachedResponse) -> None:
        """Store a successful response under ``key``; non-2xx responses are ignored.

        Args:
            key: a :func:`request_key`.
            method: the request's method (kept for inspection).
            url: the request's URL (kept for inspection).
            response: the response to store.
        """
        if not 200 <= response.status <= 299:
            return
        row = (key, method, url, response.status, json.dumps(response.headers), response.body)
        with self._lock:
            if self._conn is None:
                return
            try:
                self._conn.execute(
                    "INSERT OR REPLACE INTO responses "
                    "(key, method, url, status, headers, body, created) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (*row, time.time()),
                )
            except sqlite3.Error as exc:
                self._disable(f"writing failed: {type(exc).__name__}: {exc}")
                return
            self.writes += 1

    def count_bypass(self) -> None:
        """Count a request that went around the cache (a streaming one)."""
        with self._lock:
            self.bypassed += 1

    def __len__(self) -> int:
        with self._lock:
            if self._conn is None:
                return 0
            try:
                (count,) = self._conn.execute("SELECT count(*) FROM responses").fetchone()
            except sqlite3.Error:
                return 0
        return int(count)

    def stats(self) -> dict[str, Any]:
        """``{"path", "enabled", "hits", "misses", "writes", "bypassed"}`` of this process."""
        return {
            "path": str(self.path),
            "enabled": self.enabled,
            "hits": self.hits,
            "misses": self.misses,
            "writes": self.writes,
            "bypassed": self.bypassed,
        }

    def close(self) -> None:
        """Close the file; later lookups miss and nothing more is stored. Safe to repeat."""
        with self._lock:
            conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def __repr__(self) -> str:
        return f"ResponseCache({str(self.path)!r}, enabled={self.enabled})"


class CachingTransport(httpx.AsyncBaseTransport):
    """An ``httpx`` transport that answers repeated requests from a :class:`ResponseCache`.

    It also serves clients of ``httpx2`` (the fork recent ``openai`` releases use), whose
    transport interface is the same: responses are built with the request's own library.

    Misses, streaming requests and everything when the cache is off go to ``inner``; a 2xx
    answer to a cacheable request is read in full, stored, and handed on. Cached answers
    carry the header ``x-dotevals-cache: hit``.

    Args:
        cache: the cache; None passes every request through.
        inner: the transport that talks to the server (``httpx.AsyncHTTPTransport()`` by
            default).
    """

    def __init__(
        self, cache: ResponseCache | None, inner: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self.cache = cache
        self.inner = inner if inner is not None else httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Answer from the cache, or from ``inner`` (storing 2xx answers)."""
        cache = self.cache
        if cache is None or not cache.enabled:
            return await self.inner.handle_async_request(request)
        body = await request.aread()
        if is_streaming(body):
            cache.count_bypass()
            return await self.inner.handle_async_request(request)
        key = request_key(request.method, _key_url(request), body)
        cached = cache.get(key)
        if cached is not None:
            return cached.to_response(request)
        response = await self.inner.handle_async_request(request)
        if not 200 <= response.status_code <= 299:
            return response
        return await self._store(cache, key, request, response)

    @staticmethod
    async def _store(
        cache: ResponseCache, key: str, request: httpx.Request, response: httpx.Response
    ) -> httpx.Response:
        raw, headers = await _read_whole(response)
        cache.put(
            key,
            request.method,
            str(request.url),
            CachedResponse(response.status_code, headers, raw),
        )
        extensions = _kept_extensions(response.extensions)
        return _response(request, response.status_code, headers, raw, extensions)

    async def aclose(self) -> None:
        """Close the inner transport (the cache stays open: it is shared)."""
        await self.inner.aclose()


def _key_url(request: httpx.Request) -> str:
    """The request's URL, its origin replaced by the ``x-dotevals-cache-scope`` header if set."""
    scope = request.headers.get(SCOPE_HEADER)
    if not scope:
        return str(request.url)
    query = request.url.query.decode("ascii", "replace")
    return f"scope:{scope}{request.url.path}" + (f"?{query}" if query else "")


async def _read_whole(response: httpx.Response) -> tuple[bytes, list[tuple[str, str]]]:
    """The body of a fresh response as received, and its headers worth keeping; closes it."""
    drop = _HOP_HEADERS
    try:
        if response.is_stream_consumed:  # read already (a mock transport): decoded content
            raw = response.content
            drop = drop | {"content-encoding"}
        else:
            raw = b"".join([chunk async for chunk in response.aiter_raw()])
    finally:
        await response.aclose()
    headers = [(k, v) for k, v in response.headers.multi_items() if k.lower() not in drop]
    return raw, headers


def _kept_extensions(extensions: dict[str, Any]) -> dict[str, Any]:
    """The response extensions that describe the answer, not the (closed) connection."""
    return {k: v for k, v in extensions.items() if k in ("http_version", "reason_phrase")}


_active: ResponseCache | None = None
_active_lock = threading.Lock()


def configure(path: str | os.PathLike[str] | None) -> ResponseCache | None:
    """Set (or, with None, clear) the process-wide cache that new clients use.

    Args:
        path: the SQLite file, or None to turn caching off.

    Returns:
        The active cache, or None when ``path`` is None or the file cannot be used (a
        :class:`CacheWarning` says why; the run goes on without a cache).
    """
    global _active
    cache = ResponseCache(path) if path is not None else None
    if cache is not None and not cache.enabled:
        cache = None
    with _active_lock:
        previous, _active = _active, cache
    if previous is not None and previous is not cache:
        previous.close()
    return cache


def active() -> ResponseCache | None:
    """The process-wide cache set by :func:`configure`, or None."""
    return _active


def stats() -> dict[str, Any]:
    """The active cache's counters (:meth:`ResponseCache.stats`); zeros when none is active."""
    cache = _active
    if cache is None:
        return {"path": None, "enabled": False, "hits": 0, "misses": 0, "writes": 0, "bypassed": 0}
    return cache.stats()
