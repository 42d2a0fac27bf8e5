"""pytest fixtures for model providers: ``model_providers``, ``NAME_provider``, ``--model``."""

from __future__ import annotations
