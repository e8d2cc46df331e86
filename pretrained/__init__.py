"""Pretrained weights: a registry (file, sha256, size, URL, recipe, metrics) with checksummed
offline copies, a cache and downloads; and importers of the field's published checkpoints.

- :mod:`mimokd.pretrained.registry`: the entries as data (:data:`~.registry.ENTRIES`), looked up
  (read at call time; tests swap it) with :func:`get_entry` / :func:`list_entries`, shown by :func:`registry_table`
  (``mimokd pretrained list``).
- :mod:`mimokd.pretrained.storage`: the float16 ``.weights.h5`` files
  (:func:`save_entry_weights`, :func:`load_entry_weights`), where they are found (offline folder,
  the checkout's ``pretrained/weights/``, the cache, a download), and their sha256 checks
  (:class:`ChecksumError`: a file that does not match is never loaded, and never overwritten).
- :mod:`mimokd.pretrained.importers`: other groups' checkpoints (the CsiNet authors' Keras 2
  files, PyTorch CRNet / BCRNet state dicts) into zoo models (imported on its own: it loads Keras).

Load a registered model with ``mimokd.zoo.create_model(name, cr=..., weights="cost2100-indoor")``.

Examples:
    >>> from mimokd.pretrained import fetch_entry, list_entries
    >>> [e.name for e in list_entries(model="crnet_cui")]
    >>> path = fetch_entry("crnet_cui-cr16-cost2100-indoor")   # verified local copy (downloads if none)
"""

from mimokd.pretrained.registry import (
    BASE_URL,
    RELEASE_TAG,
    Metrics,
    PretrainedEntry,
    Recipe,
    UnknownEntryError,
    entry_stanza,
    find_entry,
    get_entry,
    list_entries,
    registry_table,
)
from mimokd.pretrained.storage import (
    ChecksumError,
    WeightsUnavailableError,
    download_entry,
    fetch_entry,
    file_digest,
    load_entry_weights,
    locate,
    make_entry,
    print_entry_stanza,
    save_entry_weights,
    verify_entries,
)

__all__ = [
    "BASE_URL",
    "RELEASE_TAG",
    "ChecksumError",
    "Metrics",
    "PretrainedEntry",
    "Recipe",
    "UnknownEntryError",
    "WeightsUnavailableError",
    "download_entry",
    "entry_stanza",
    "fetch_entry",
    "file_digest",
    "find_entry",
    "get_entry",
    "list_entries",
    "load_entry_weights",
    "locate",
    "make_entry",
    "print_entry_stanza",
    "registry_table",
    "save_entry_weights",
    "verify_entries",
]
