"""Storage backends, chosen by URL: ``json://.dotevals`` (default), ``sqlite://results.db``.

Backends register in the entry-point group ``dotevals.storage`` under their URL scheme.
"""

from __future__ import annotations

from dotevals._registry import entry_point_names, load_entry_point
from dotevals.errors import ConfigurationError
from dotevals.storage.base import RecordWriter, Storage, StoredEvaluation
from dotevals.storage.jsonl import JSONLStorage

__all__ = [
    "DEFAULT_STORAGE",
    "JSONLStorage",
    "RecordWriter",
    "Storage",
    "StoredEvaluation",
    "open_storage",
]

#: Where results go when no ``--storage`` is given.
DEFAULT_STORAGE = "json://.dotevals"


def open_storage(url: str | Storage | None = None) -> Storage:
    """Open the storage a URL names (``scheme://path``); a plain path means JSONL files.

    Raises:
        ConfigurationError: the scheme is unknown; the message lists the known ones.
    """
    if isinstance(url, Storage):
        return url
    url = url or DEFAULT_STORAGE
    scheme, sep, path = url.partition("://")
    if not sep:
        return JSONLStorage(url)
    known = entry_point_names("dotevals.storage")
    if scheme not in known:
        raise ConfigurationError(
            f"unknown storage scheme {scheme!r} in {url!r}; known schemes: "
            + ", ".join(f"{k}://" for k in known)
        )
    factory = load_entry_point("dotevals.storage", scheme)
    storage = factory(path)
    if not isinstance(storage, Storage):
        raise ConfigurationError(f"storage {scheme!r} made {storage!r}, not a Storage")
    return storage
