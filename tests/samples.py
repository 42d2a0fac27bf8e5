"""Evaluation files that several test modules write with ``pytester.makepyfile``."""

from __future__ import annotations

#: Two parametrized items, ``eval_param[small]`` (all pass) and ``eval_param[org/large]``
#: (all fail), through an indirect ``model`` fixture; the second id holds a ``/``.
PARAMETRIZED = """
import pytest
from dotevals import foreach

@pytest.fixture
def model(request):
    return request.param

@pytest.mark.parametrize("model", ["small", "org/large"], indirect=True)
@foreach("x", [1, 2])
def eval_param(x, model):
    return model == "small"
"""
