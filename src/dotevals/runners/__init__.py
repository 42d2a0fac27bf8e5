"""Where an evaluation's rows run: in this process (the default) or sharded over Ray actors.

``dotevals.run(..., runner="ray", workers=4)`` and ``pytest --dotevals-runner ray
--ray-workers 4`` pick the Ray runner; a :class:`~dotevals.runners.ray.RayRunner` given as
``runner=`` sets its other options. Fixtures reach the actors as recipes
(:class:`ModelRecipe`, :func:`rebuildable`) or pickled values.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from dotevals.errors import ConfigurationError
from dotevals.providers._recipes import ModelRecipe, rebuildable

if TYPE_CHECKING:
    from dotevals._engine import Runner

__all__ = ["RUNNERS", "ModelRecipe", "make_runner", "rebuildable"]

#: The runner names ``runner=`` and ``--dotevals-runner`` accept.
RUNNERS: Final = ("local", "ray")


def make_runner(
    runner: str | Runner | None,
    workers: int | None = None,
    *,
    keep_actors: bool = False,
    gpus: float | None = None,
) -> Runner | None:
    """The runner a name gives (None: in this process); a runner object is returned as is.

    ``keep_actors``: Ray actors serve every evaluation until the runner's ``close()``
    (a pytest session); otherwise they end with the evaluation (one ``dotevals.run``).
    ``gpus``: GPUs each Ray actor reserves (and sees), for the model server it starts.

    Raises:
        ConfigurationError: an unknown name, ``workers`` without the Ray runner, or Ray
            missing (the message names the ``dotevals[ray]`` extra).
    """
    if runner is not None and not isinstance(runner, str):
        return runner
    name = (runner or "local").strip().lower()
    if name not in RUNNERS:
        raise ConfigurationError(f"unknown runner {runner!r}; known runners: {', '.join(RUNNERS)}")
    if name == "local":
        if workers is not None or gpus is not None:
            raise ConfigurationError(
                "workers and GPUs per worker need the Ray runner (runner='ray', "
                "--dotevals-runner ray); without it rows run in this process"
            )
        return None
    from dotevals.runners.ray import RayRunner, import_ray

    import_ray()
    actor_options = {} if gpus is None else {"num_gpus": gpus}
    return RayRunner(workers=workers or 2, keep_actors=keep_actors, actor_options=actor_options)
