"""Choosing a runner by name: ``runner=`` of ``dotevals.run`` and ``--dotevals-runner``."""

from __future__ import annotations

import pytest

from dotevals.errors import ConfigurationError
from dotevals.runners import RUNNERS, make_runner
from dotevals.runners.ray import RayRunner


def test_local_is_in_this_process_and_unknown_names_list_the_known() -> None:
    assert make_runner(None) is None and make_runner("local") is None
    with pytest.raises(
        ConfigurationError, match="unknown runner 'dask'; known runners: local, ray"
    ):
        make_runner("dask")


def test_workers_or_gpus_without_ray_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="need the Ray runner"):
        make_runner("local", 4)
    with pytest.raises(ConfigurationError, match="need the Ray runner"):
        make_runner(None, gpus=1)


def test_ray_runner_options() -> None:
    pytest.importorskip("ray")
    runner = make_runner("ray", 3, keep_actors=True, gpus=1)
    assert isinstance(runner, RayRunner)
    assert (runner.workers, runner.keep_actors, runner.actor_options) == (3, True, {"num_gpus": 1})
    assert make_runner(runner) is runner


def test_ray_options_without_the_ray_runner_are_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_nothing="def test_nothing():\n    pass\n")
    result = pytester.runpytest("--ray-workers", "2")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--dotevals-runner: workers and GPUs per worker need the Ray*"])


def test_the_plugin_knows_the_same_runner_names() -> None:
    from dotevals.pytest_plugin import _options

    assert _options.RUNNERS == RUNNERS  # the plugin's option module imports no runner code
