"""While an evaluation runs, the SDK clients it was given make one HTTP attempt per call.

The openai and anthropic SDKs retry failed requests themselves (2 retries by default), inside
the call dotevals is timing and retrying: one failing row then made 18 HTTP attempts while its
record said 6, and the SDK's backoff slept inside a concurrency slot. dotevals' own retries
(counted on the record, sleeping outside the slot, honouring ``Retry-After``) replace them for
every client the engine can see: a fixture value that is an SDK client, or that holds one as
its ``client`` attribute. The client's own setting is put back when the evaluation ends.
Clients dotevals' providers make have ``max_retries=0`` already.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable, Iterator
from typing import Any, Final

__all__ = ["sdk_clients", "without_sdk_retries"]

logger = logging.getLogger("dotevals")

#: Top-level packages whose clients retry on their own through a ``max_retries`` attribute.
_SDK_PACKAGES: Final = frozenset({"openai", "anthropic"})


def _is_sdk_client(value: Any) -> bool:
    package = type(value).__module__.partition(".")[0]
    return package in _SDK_PACKAGES and isinstance(getattr(value, "max_retries", None), int)


def sdk_clients(values: Iterable[Any]) -> list[Any]:
    """The SDK clients among ``values`` (or held as a value's ``client``), each once."""
    found: dict[int, Any] = {}
    for value in values:
        for candidate in (value, getattr(value, "client", None)):
            if candidate is not None and _is_sdk_client(candidate):
                found.setdefault(id(candidate), candidate)
    return list(found.values())


@contextlib.contextmanager
def without_sdk_retries(values: Iterable[Any]) -> Iterator[None]:
    """``max_retries = 0`` on the SDK clients among ``values`` for the duration."""
    changed = [(client, client.max_retries) for client in sdk_clients(values)]
    changed = [(client, old) for client, old in changed if old]
    for client, old in changed:
        logger.info(
            "%s: its own %d retries are off during the evaluation; dotevals retries instead "
            "(--max-retries)",
            type(client).__name__,
            old,
        )
        client.max_retries = 0
    try:
        yield
    finally:
        for client, old in changed:
            client.max_retries = old
