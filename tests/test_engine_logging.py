"""Retries, throttle cuts and fail-fast stops are told to ``logging``."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

import dotevals
from dotevals import foreach


class Busy(Exception):
    """What a provider raises for an overloaded server: retried soon, a throttle."""

    dotevals_transient = True
    dotevals_throttle = True
    retry_after = 0.001


def test_retries_and_throttle_cuts_are_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    failed: set[int] = set()

    @foreach("x", range(40))
    async def eval_busy(x: int) -> bool:
        if x not in failed:  # every row is throttled once, then answered
            failed.add(x)
            raise Busy("server busy, key sk-secret-123")
        return True

    with caplog.at_level(logging.INFO, logger="dotevals"):
        results = dotevals.run(
            eval_busy, experiment="busy", storage=f"json://{tmp_path}", progress=False
        )
    assert results.summary()["errors"] == 0
    retries = [r for r in caplog.records if "retrying in" in r.getMessage()]
    assert len(retries) == 40
    assert "eval_busy: row " in retries[0].getMessage()
    assert "attempt 1 failed (Busy)" in retries[0].getMessage()
    assert any("throttled, limit cut from 16 to 8" in r.getMessage() for r in caplog.records)
    assert "sk-secret-123" not in caplog.text  # the message is not logged, only the type


def test_a_fail_fast_stop_is_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    @foreach("x", range(50))
    async def eval_broken(x: int) -> bool:  # 16 in flight: more fail after the stop
        raise ValueError("no model configured")

    with caplog.at_level(logging.INFO, logger="dotevals"):
        dotevals.run(eval_broken, experiment="broken", storage=f"json://{tmp_path}", progress=False)
    (stop,) = [r for r in caplog.records if "stopped after" in r.getMessage()]  # once
    assert stop.levelno == logging.WARNING
    assert "eval_broken: stopped after 10 rows failed the same way" in stop.getMessage()


def test_log_cli_level_shows_retries_in_a_session(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        eval_flaky="""
        from dotevals import foreach

        class Busy(Exception):
            dotevals_transient = True
            retry_after = 0.001

        seen = set()

        @foreach("x", range(3))
        async def eval_flaky(x):
            if x not in seen:
                seen.add(x)
                raise Busy()
            return True
        """
    )
    result = pytester.runpytest("--log-cli-level=INFO", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*eval_flaky: row * attempt 1 failed (Busy); retrying in*"])
