"""The retry policy: which errors are transient, which throttle, and how long to wait."""

from __future__ import annotations

import sys
import time
import types
from email.utils import formatdate
from typing import Any

import httpx
import openai
import pytest
import tenacity

from dotevals.retry import RetryPolicy, is_throttle, is_transient, retry_after

sdk_http: Any = httpx  # the HTTP library the installed openai SDK is built on
try:
    import httpx2

    sdk_http = httpx2
except ImportError:  # pragma: no cover - openai releases before httpx2
    pass

URL = "http://127.0.0.1:1/v1/chat/completions"


def api_error(status: int, headers: dict[str, str] | None = None) -> openai.APIStatusError:
    """The error the openai SDK raises for an HTTP ``status`` answer."""
    request = sdk_http.Request("POST", URL)
    response = sdk_http.Response(status, headers=headers or {}, request=request)
    return openai.APIStatusError(f"Error code: {status}", response=response, body=None)


def httpx_status_error(status: int, headers: dict[str, str] | None = None) -> httpx.HTTPStatusError:
    request = httpx.Request("POST", URL)
    response = httpx.Response(status, headers=headers or {}, request=request)
    return httpx.HTTPStatusError(f"status {status}", request=request, response=response)


class ProviderError(Exception):
    """A provider's own error, classified with dotevals' attributes."""

    def __init__(self, transient: bool, *, throttle: bool | None = None, wait: Any = None):
        super().__init__("provider says so")
        self.dotevals_transient = transient
        if throttle is not None:
            self.dotevals_throttle = throttle
        if wait is not None:
            self.retry_after = wait


@pytest.fixture
def fake_aiohttp(monkeypatch: pytest.MonkeyPatch) -> types.SimpleNamespace:
    """A stand-in ``aiohttp`` module with its two error classes, as if it were imported."""

    class ClientConnectionError(Exception):
        pass

    class ClientResponseError(Exception):
        def __init__(self, status: int, headers: dict[str, str] | None = None) -> None:
            super().__init__(f"status {status}")
            self.status = status
            self.headers = headers

    module = types.ModuleType("aiohttp")
    module.ClientConnectionError = ClientConnectionError  # type: ignore[attr-defined]
    module.ClientResponseError = ClientResponseError  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "aiohttp", module)
    return types.SimpleNamespace(
        ClientConnectionError=ClientConnectionError, ClientResponseError=ClientResponseError
    )


# -- is_transient ----------------------------------------------------------------------------


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504, 529])
def test_openai_transient_statuses(status: int) -> None:
    assert is_transient(api_error(status))


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 422])
def test_openai_client_errors_are_not_transient(status: int) -> None:
    assert not is_transient(api_error(status))


def test_openai_connection_errors_and_timeouts_are_transient() -> None:
    request = sdk_http.Request("POST", URL)
    assert is_transient(openai.APIConnectionError(request=request))
    assert is_transient(openai.APITimeoutError(request=request))


def test_x_should_retry_overrides_the_status() -> None:
    assert not is_transient(api_error(500, {"x-should-retry": "false"}))
    assert is_transient(api_error(409, {"x-should-retry": "true"}))


@pytest.mark.parametrize(("status", "transient"), [(429, True), (503, True), (404, False)])
def test_httpx_status_errors(status: int, transient: bool) -> None:
    assert is_transient(httpx_status_error(status)) is transient


@pytest.mark.parametrize(
    "exc",
    [
        httpx.ConnectError("refused"),
        httpx.ReadTimeout("slow"),
        httpx.RemoteProtocolError("closed"),
        httpx.ReadError("reset"),
    ],
)
def test_httpx_transport_errors_are_transient(exc: Exception) -> None:
    assert is_transient(exc)


@pytest.mark.parametrize(
    "exc", [httpx.UnsupportedProtocol("ftp://"), httpx.LocalProtocolError("bad header")]
)
def test_httpx_errors_of_the_caller_are_not_transient(exc: Exception) -> None:
    assert not is_transient(exc)


def test_httpx2_transport_errors_are_transient() -> None:
    httpx2 = pytest.importorskip("httpx2")
    assert is_transient(httpx2.ConnectError("refused"))
    assert not is_transient(httpx2.UnsupportedProtocol("ftp://"))


def test_aiohttp_errors(fake_aiohttp: types.SimpleNamespace) -> None:
    assert is_transient(fake_aiohttp.ClientConnectionError("refused"))
    assert is_transient(fake_aiohttp.ClientResponseError(502))
    assert is_throttle(fake_aiohttp.ClientResponseError(429))
    assert not is_transient(fake_aiohttp.ClientResponseError(401))


def test_aiohttp_retry_after_header(fake_aiohttp: types.SimpleNamespace) -> None:
    exc = fake_aiohttp.ClientResponseError(429, {"Retry-After": "2"})
    assert retry_after(exc) == 2.0


def test_a_status_attribute_alone_does_not_make_an_error_http() -> None:
    class Odd(Exception):
        status = 503

    assert not is_transient(Odd())


@pytest.mark.parametrize("exc", [ConnectionResetError(), TimeoutError(), ConnectionRefusedError()])
def test_builtin_connection_errors_are_transient(exc: Exception) -> None:
    assert is_transient(exc)


@pytest.mark.parametrize(
    "exc", [FileNotFoundError("x"), ValueError("x"), KeyError("x"), RuntimeError("x")]
)
def test_other_errors_are_not_transient(exc: Exception) -> None:
    assert not is_transient(exc)
    assert RetryPolicy().delay(1, exc) is None


def test_a_provider_classifies_its_own_errors() -> None:
    assert is_transient(ProviderError(True))
    assert not is_transient(ProviderError(False))
    timeout = TimeoutError("but the provider knows better")
    timeout.dotevals_transient = False  # type: ignore[attr-defined]
    assert not is_transient(timeout)
    flagged = api_error(503)
    flagged.dotevals_transient = False  # type: ignore[attr-defined]
    assert not is_transient(flagged)


# -- is_throttle -----------------------------------------------------------------------------


@pytest.mark.parametrize(("status", "throttle"), [(429, True), (503, True), (500, False)])
def test_throttles(status: int, throttle: bool) -> None:
    assert is_throttle(api_error(status)) is throttle
    assert is_throttle(httpx_status_error(status)) is throttle


def test_a_provider_can_flag_a_throttle() -> None:
    assert is_throttle(ProviderError(True, throttle=True))
    assert not is_throttle(ProviderError(True))
    assert not is_throttle(ValueError())


# -- retry_after -----------------------------------------------------------------------------


def test_retry_after_seconds() -> None:
    assert retry_after(api_error(429, {"Retry-After": "3"})) == 3.0
    assert retry_after(httpx_status_error(429, {"retry-after": "0.5"})) == 0.5


def test_retry_after_ms_wins() -> None:
    exc = api_error(429, {"retry-after-ms": "250", "Retry-After": "9"})
    assert retry_after(exc) == 0.25


def test_retry_after_http_date() -> None:
    exc = api_error(503, {"Retry-After": formatdate(time.time() + 10, usegmt=True)})
    wait = retry_after(exc)
    assert wait is not None
    assert 5.0 <= wait <= 10.0


def test_retry_after_in_the_past_is_zero() -> None:
    exc = api_error(503, {"Retry-After": formatdate(time.time() - 60, usegmt=True)})
    assert retry_after(exc) == 0.0


@pytest.mark.parametrize("value", ["soon", "-5", "nan", ""])
def test_retry_after_garbage_is_ignored(value: str) -> None:
    assert retry_after(api_error(429, {"Retry-After": value})) is None


def test_retry_after_absent() -> None:
    assert retry_after(api_error(429)) is None
    assert retry_after(ValueError()) is None


def test_retry_after_from_the_provider() -> None:
    assert retry_after(ProviderError(True, wait=1.5)) == 1.5
    assert retry_after(ProviderError(True, wait="later")) is None


# -- RetryPolicy.delay -----------------------------------------------------------------------


def test_backoff_is_exponential_without_jitter() -> None:
    policy = RetryPolicy(max_retries=5, initial=0.5, maximum=30.0, jitter=0.0)
    exc = api_error(500)
    assert [policy.delay(n, exc) for n in range(1, 6)] == [0.5, 1.0, 2.0, 4.0, 8.0]


def test_the_default_waits_grow_from_a_tenth_of_a_second_for_five_retries() -> None:
    policy = RetryPolicy()
    exc = api_error(429)
    for n, bound in enumerate([0.1, 0.2, 0.4, 0.8, 1.6], start=1):
        waits = [policy.delay(n, exc) for _ in range(50)]
        assert all(w is not None and 0 <= w <= bound for w in waits)
        assert max(w for w in waits if w is not None) > bound / 2  # full jitter: up to bound
    assert policy.delay(6, exc) is None


def test_backoff_is_capped() -> None:
    policy = RetryPolicy(max_retries=20, initial=1.0, maximum=5.0, jitter=3.0)
    exc = api_error(500)
    assert all(policy.delay(n, exc) == 5.0 for n in range(4, 21))


def test_jitter_stays_within_its_bounds() -> None:
    policy = RetryPolicy(initial=0.5, jitter=0.5)
    waits = [policy.delay(1, api_error(502)) for _ in range(200)]
    assert all(w is not None and 0.5 <= w <= 1.0 for w in waits)
    assert len(set(waits)) > 1


def test_gives_up_after_max_retries() -> None:
    policy = RetryPolicy(max_retries=3)
    exc = api_error(429)
    assert all(policy.delay(n, exc) is not None for n in (1, 2, 3))
    assert policy.delay(4, exc) is None
    assert RetryPolicy(max_retries=0).delay(1, exc) is None


@pytest.mark.parametrize("status", [400, 401, 403, 404])
def test_non_transient_statuses_get_no_delay(status: int) -> None:
    assert RetryPolicy().delay(1, api_error(status)) is None


def test_retry_after_is_honoured_and_capped() -> None:
    policy = RetryPolicy(maximum=10.0)
    assert policy.delay(1, api_error(429, {"Retry-After": "2"})) == 2.0
    assert policy.delay(1, api_error(429, {"Retry-After": "3600"})) == 10.0
    assert policy.delay(1, ProviderError(True, wait=0.0)) == 0.0


def test_should_retry() -> None:
    policy = RetryPolicy(max_retries=1)
    assert policy.should_retry(1, api_error(503))
    assert not policy.should_retry(2, api_error(503))
    assert not policy.should_retry(1, api_error(401))


def test_the_policy_is_tenacitys() -> None:
    policy = RetryPolicy()
    assert isinstance(policy._retrying, tenacity.Retrying)
    assert policy == RetryPolicy()
    assert RetryPolicy(max_retries=2) != policy
