"""Shared test configuration: pytester is loaded through addopts (``-p pytester``)."""

from __future__ import annotations
