"""Names shared by the decorators and the pytest plugin, and fresh experiment names.

Standard library only: the plugin imports this in every pytest session.
"""

from __future__ import annotations

import secrets
import time
from typing import Final

__all__ = ["PROVIDER_ATTR", "RUNNER_ATTR", "SPEC_ATTR", "new_experiment_name"]

#: The attribute that carries an evaluation's spec on the decorated function.
SPEC_ATTR: Final = "__dotevals_spec__"
#: The provider's entry-point name, set on a model the ``--model`` fixture hands out.
PROVIDER_ATTR: Final = "_dotevals_provider"
#: Where the pytest plugin puts the callable that runs an evaluation item (on the Config).
RUNNER_ATTR: Final = "_dotevals_runner"


def new_experiment_name() -> str:
    """A fresh name for a run given no experiment: ``unnamed-YYYYMMDD-HHMMSS-xxxx``."""
    return time.strftime("unnamed-%Y%m%d-%H%M%S-") + secrets.token_hex(2)
