"""Pretrained weight files: how they are stored, found, downloaded and verified.

**Format.** An entry's file is a Keras ``.weights.h5`` (``model.save_weights``) of the model's
variables, BatchNorm statistics included, optimizer state left out, normally stored as float16
(:func:`save_entry_weights`). :func:`load_entry_weights` converts the file to float32 in a
temporary copy before ``model.load_weights``: Keras 3.15 happens to cast float16 arrays on
assignment, but we do not rely on that across versions, and the temporary copy also lets us check
the file's shapes against the model before any variable is touched. Writing is deterministic (no
HDF5 timestamps): the same weights give the same bytes and the same sha256.

**Where a file is looked up**, in this order (:func:`locate`, :func:`fetch_entry`):

1. ``weights_dir=`` or else the ``MIMOKD_WEIGHTS_DIR`` environment variable: offline copies the
   user points to (a folder holding ``<entry>.weights.h5`` files);
2. the checkout's own ``pretrained/weights/`` (present when running from a clone: it is found
   beside this module, and absent from a wheel, which does not ship the files);
3. the cache: ``cache_dir=``, else ``MIMOKD_CACHE_DIR``, else ``$KERAS_HOME/mimokd`` (default
   ``~/.keras/mimokd``);
4. a download into the cache, through ``keras.utils.get_file`` with the entry's sha256, from
   ``entry.url`` (``MIMOKD_WEIGHTS_URL`` overrides the base URL, for mirrors).

**Checksums.** The first copy found is verified (size and sha256) before it is loaded. A copy that
does not match raises :class:`ChecksumError` naming the file and both hashes; it is neither loaded
nor skipped in favour of a later place, and it is never modified, replaced or deleted. This is why
the cache is checked here and not by ``keras.utils.get_file``: given an existing file whose hash
does not match, ``get_file`` silently downloads over it. A download goes to a temporary folder in
the cache, is verified, and only then moved (atomically) to its cache path; a download whose hash
does not match raises :class:`ChecksumError` and leaves nothing behind.
"""

import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from mimokd.pretrained.registry import (
    ENV_WEIGHTS_URL,
    PretrainedEntry,
    entry_file_name,
    entry_name,
    entry_stanza,
    get_entry,
    list_entries,
    parse_entry_name,
)

ENV_WEIGHTS_DIR = "MIMOKD_WEIGHTS_DIR"
ENV_CACHE_DIR = "MIMOKD_CACHE_DIR"
# The checkout's weight files: pretrained/weights/ beside this module (only in a clone).
CHECKOUT_WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"

OFFLINE, CHECKOUT, CACHE = "offline", "checkout", "cache"
_LFS_POINTER = b"version https://git-lfs"


class ChecksumError(ValueError):
    """A weight file whose sha256 (or size) is not the registered one: it is never loaded."""

    def __init__(self, path, expected, actual, *, entry=None, where="", size=None, expected_size=None,
                 lfs_pointer=False):
        self.path, self.expected, self.actual = str(path), expected, actual
        self.entry, self.where = entry, where
        label = f"{where} copy of {entry}" if where and entry else (entry or where or "weight file")
        sizes = "" if size is None or expected_size is None else f"; size {size:,} bytes, expected {expected_size:,}"
        if where == "downloaded":
            what = ("The download was discarded (nothing was cached): the server does not serve the registered "
                    f"file; check the URL or the mirror named by {ENV_WEIGHTS_URL}.")
        else:
            what = ("It was not loaded and has been left as it is; delete or replace it (`mimokd pretrained "
                    "download` fetches a verified copy into the cache once the bad one is removed).")
        hint = (" It is a Git LFS pointer, not the file: run `git lfs pull` or download the entry."
                if lfs_pointer else "")
        super().__init__(f"{path} ({label}) does not match the registry: sha256 {actual}, expected "
                         f"{expected}{sizes}. {what}{hint}")


class WeightsUnavailableError(FileNotFoundError):
    """No copy of an entry's file is on this machine and it could not be downloaded."""


# ---------------------------------------------------------------------------------------------
# Hashes and places
# ---------------------------------------------------------------------------------------------


def file_digest(path):
    """``(sha256 hex digest, size in bytes)`` of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest(), os.path.getsize(path)


def default_cache_dir():
    """``$MIMOKD_CACHE_DIR``, else ``$KERAS_HOME/mimokd``, else ``~/.keras/mimokd``."""
    if os.environ.get(ENV_CACHE_DIR):
        return Path(os.environ[ENV_CACHE_DIR]).expanduser()
    keras_home = os.environ.get("KERAS_HOME") or Path.home() / ".keras"
    return Path(keras_home).expanduser() / "mimokd"


def cache_dir_path(cache_dir=None):
    """The cache folder: ``cache_dir`` if given, else :func:`default_cache_dir`."""
    return Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()


def offline_dir_path(weights_dir=None):
    """The offline folder: ``weights_dir`` if given, else ``$MIMOKD_WEIGHTS_DIR``, else None."""
    if weights_dir is not None:
        return Path(weights_dir).expanduser()
    value = os.environ.get(ENV_WEIGHTS_DIR)
    return Path(value).expanduser() if value else None


@dataclass(frozen=True)
class Place:
    """Where a copy of an entry's file may be: ``where`` is offline, checkout or cache."""

    where: str
    path: Path


def locate(entry, *, weights_dir=None, cache_dir=None):
    """The places an entry's file is looked for, in lookup order (whether or not a file is there)."""
    entry = get_entry(entry)
    places = []
    offline = offline_dir_path(weights_dir)
    if offline is not None:
        places.append(Place(OFFLINE, offline / entry.file))
    if CHECKOUT_WEIGHTS_DIR.is_dir():
        places.append(Place(CHECKOUT, CHECKOUT_WEIGHTS_DIR / entry.file))
    places.append(Place(CACHE, cache_dir_path(cache_dir) / entry.file))
    return places


@dataclass(frozen=True)
class FileCheck:
    """The state of one copy: status "OK", "missing" or "MISMATCH" (with the hash found)."""

    entry: str
    where: str
    path: Path
    status: str
    sha256: str | None = None
    size: int | None = None


def check_file(entry, path, where=""):
    """:class:`FileCheck` of the file at ``path`` against ``entry`` (never modifies the file)."""
    entry, path = get_entry(entry), Path(path)
    if not path.is_file():
        return FileCheck(entry.name, where, path, "missing")
    sha256, size = file_digest(path)
    status = "OK" if (sha256, size) == (entry.sha256, entry.size) else "MISMATCH"
    return FileCheck(entry.name, where, path, status, sha256, size)


def _is_lfs_pointer(path):
    with open(path, "rb") as f:
        return f.read(len(_LFS_POINTER)) == _LFS_POINTER


def verify_file(entry, path, where=""):
    """Return ``path`` if it is the entry's file; else raise :class:`ChecksumError`."""
    entry = get_entry(entry)
    check = check_file(entry, path, where)
    if check.status == "missing":
        raise FileNotFoundError(f"No file at {path} ({where or 'copy'} of {entry.name})")
    if check.status != "OK":
        raise ChecksumError(path, entry.sha256, check.sha256, entry=entry.name, where=where,
                            size=check.size, expected_size=entry.size, lfs_pointer=_is_lfs_pointer(path))
    return Path(path)


def verify_entries(entries=None, *, weights_dir=None, cache_dir=None, registry=None):
    """:class:`FileCheck` of every place of every entry (all registered ones by default)."""
    if entries is None:
        entries = list_entries(registry=registry)
    checks = []
    for key in entries:
        entry = get_entry(key, registry=registry)
        for place in locate(entry, weights_dir=weights_dir, cache_dir=cache_dir):
            checks.append(check_file(entry, place.path, place.where))
    return checks


# ---------------------------------------------------------------------------------------------
# Finding and downloading
# ---------------------------------------------------------------------------------------------


def download_entry(entry, *, cache_dir=None):
    """The verified cached copy of ``entry``, downloaded first if the cache has none.

    A cached copy that does not match is refused (:class:`ChecksumError`), not downloaded over.
    The download (``keras.utils.get_file`` with the sha256) goes to a temporary folder in the cache
    and is moved to its cache path only once verified.

    Raises:
        ChecksumError: the cached copy or the downloaded file does not match.
        WeightsUnavailableError: the download failed (the message gives the URL and the reason).
    """
    entry = get_entry(entry)
    cache = cache_dir_path(cache_dir)
    target = cache / entry.file
    if target.exists():
        return verify_file(entry, target, CACHE)
    import keras

    cache.mkdir(parents=True, exist_ok=True)
    url = entry.url
    tmp = Path(tempfile.mkdtemp(prefix=f".{entry.file}.", suffix=".download", dir=cache))
    try:
        try:
            got = keras.utils.get_file(fname=entry.file, origin=url, file_hash=entry.sha256,
                                       hash_algorithm="sha256", cache_dir=str(cache), cache_subdir=str(tmp))
        except Exception as err:  # get_file raises a bare Exception for HTTP / URL errors
            part = tmp / entry.file
            if part.is_file():  # downloaded, but not the registered file
                sha256, size = file_digest(part)
                raise ChecksumError(url, entry.sha256, sha256, entry=entry.name, where="downloaded",
                                    size=size, expected_size=entry.size) from None
            raise WeightsUnavailableError(
                f"Could not download {entry.name} from {url}: {err}. Offline, put {entry.file} in a "
                f"folder named by {ENV_WEIGHTS_DIR} (or weights_dir=), or in the cache {cache}.") from err
        verify_file(entry, got, "downloaded")
        os.replace(got, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def fetch_entry(entry, *, weights_dir=None, cache_dir=None, download=True, registry=None):
    """The path of a verified copy of ``entry``'s file: offline folder, checkout, cache, download.

    The first copy found is verified and returned; a copy that does not match raises
    :class:`ChecksumError` (it is not passed over for a later one, and it is left untouched).

    Args:
        entry: a :class:`PretrainedEntry`, an entry name, or ``(model, cr, dataset)``.
        weights_dir: the offline folder (default ``$MIMOKD_WEIGHTS_DIR``).
        cache_dir: the cache folder (default ``$MIMOKD_CACHE_DIR`` or ``~/.keras/mimokd``).
        download: whether to download when no copy is found.
    """
    entry = get_entry(entry, registry=registry)
    places = locate(entry, weights_dir=weights_dir, cache_dir=cache_dir)
    for place in places:
        if place.path.exists():
            return verify_file(entry, place.path, place.where)
    if not download:
        looked = "; ".join(f"{p.where} {p.path}" for p in places)
        raise WeightsUnavailableError(f"No copy of {entry.name} on this machine (looked in: {looked}) "
                                      f"and download=False")
    return download_entry(entry, cache_dir=cache_dir)


# ---------------------------------------------------------------------------------------------
# Saving and loading (float16 storage)
# ---------------------------------------------------------------------------------------------


def _copy_h5(src, dst, cast, skip=("optimizer",)):
    """Copy the HDF5 tree of ``src`` into a new file ``dst``, floating-point arrays cast to
    ``cast`` (None keeps them), top-level groups in ``skip`` left out, without timestamps.

    Returns ``{dataset path: shape}`` of the copied arrays.
    """
    import h5py
    import numpy as np

    shapes = {}
    with h5py.File(src, "r") as fin, h5py.File(dst, "w", track_order=False) as fout:
        fout.attrs.update(dict(fin.attrs))

        def copy(name, obj):
            if name.split("/")[0] in skip:
                return
            if isinstance(obj, h5py.Group):
                group = fout.require_group(name)
                group.attrs.update(dict(obj.attrs))
                return
            data = obj[()]
            if cast is not None and np.issubdtype(np.asarray(data).dtype, np.floating):
                with np.errstate(over="ignore"):
                    new = np.asarray(data).astype(cast)
                if not np.array_equal(np.isfinite(new), np.isfinite(data)):
                    raise ValueError(f"{name} of {src} does not fit {np.dtype(cast).name}: "
                                     f"max |value| {np.nanmax(np.abs(data)):.3g}")
                data = new
            out = fout.create_dataset(name, data=data, track_times=False)
            out.attrs.update(dict(obj.attrs))
            shapes[name] = tuple(np.shape(data))

        fin.visititems(copy)
    return shapes


def save_entry_weights(model, path, dtype="float16"):
    """Write ``model``'s weights to ``path`` (``*.weights.h5``) as an entry file, atomically.

    The file is ``model.save_weights`` without the optimizer state, every floating-point array
    stored as ``dtype`` ("float16" halves the size; a value float16 cannot hold is an error). The
    bytes depend only on the weights (no timestamps). Returns ``(sha256, size)``.
    """
    from mimokd.fileio import atomic_path
    from mimokd.pretrained.registry import DTYPES

    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {DTYPES}. Received: dtype={dtype!r}")
    path = Path(path)
    if not path.name.endswith(".weights.h5"):
        raise ValueError(f"An entry file is named '*.weights.h5'. Received: {path}")
    with tempfile.TemporaryDirectory() as tmp:
        full = Path(tmp) / "model.weights.h5"
        model.save_weights(full)
        with atomic_path(path) as out:
            _copy_h5(full, out, dtype)
    return file_digest(path)


def _stored_dtype(path):
    import h5py
    import numpy as np

    dtypes = set()
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, obj: dtypes.add(obj.dtype.name) if isinstance(obj, h5py.Dataset)
                     and np.issubdtype(obj.dtype, np.floating) else None)
    return "float16" if dtypes == {"float16"} else "float32"


def load_entry_weights(model, path):
    """Load a ``.weights.h5`` file (float16 or float32) into ``model``'s float32 variables.

    The file is converted to float32 in a temporary copy, its array shapes are compared with the
    model's variables (an error says how they differ, before any variable changes), then Keras'
    ``load_weights`` reads it. Returns ``model``.
    """
    import h5py
    import numpy as np

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No weights file at {path}")
    if not h5py.is_hdf5(path):
        raise ValueError(f"{path} is not an HDF5 .weights.h5 file")
    with h5py.File(path, "r") as f:
        if "layers" not in f and "vars" not in f:
            raise ValueError(
                f"{path} is not a Keras 3 weights file (model.save_weights): it has no 'layers' group. "
                "The CsiNet authors' Keras 2 files import with mimokd.pretrained.importers (`mimokd import`).")
    with tempfile.TemporaryDirectory() as tmp:
        full = Path(tmp) / "float32.weights.h5"
        shapes = _copy_h5(path, full, np.float32)
        stored = sorted(shapes.values())
        wanted = sorted(tuple(w.shape) for w in model.weights)
        if stored != wanted:
            raise ValueError(
                f"{path} does not fit {model.name}: the file holds {len(stored)} arrays, the model "
                f"{len(wanted)} variables; shapes only in the file: {_difference(stored, wanted)}, only in "
                f"the model: {_difference(wanted, stored)}. Was it saved from another model or ratio?")
        model.load_weights(full)
    return model


def _difference(a, b):
    rest = list(b)
    out = []
    for shape in a:
        if shape in rest:
            rest.remove(shape)
        else:
            out.append(shape)
    return out[:6] + (["..."] if len(out) > 6 else [])


def make_entry(model, cr, dataset, path, *, recipe, metrics, tag=None, height=32, width=32):
    """A :class:`PretrainedEntry` for the file at ``path`` (its sha256, size and stored dtype).

    :func:`print_entry_stanza` prints it as source to paste into ``ENTRIES``.
    """
    path = Path(path)
    sha256, size = file_digest(path)
    expected = entry_file_name(model, cr, dataset)
    if path.name != expected:
        raise ValueError(f"The file of {entry_name(model, cr, dataset)} is named {expected}. Received: {path}")
    return PretrainedEntry(model=model, cr=cr, dataset=dataset, file=path.name, sha256=sha256, size=size,
                           recipe=recipe, metrics=metrics, dtype=_stored_dtype(path), tag=tag,
                           height=height, width=width)


def print_entry_stanza(model, cr, dataset, path, *, recipe, metrics, tag=None, height=32, width=32, file=None):
    """Hash the file at ``path``, print its registry entry (Python source for ``ENTRIES``) and
    return the :class:`PretrainedEntry` (for ``mimokd pretrained build`` / registering by hand)."""
    import sys

    entry = make_entry(model, cr, dataset, path, recipe=recipe, metrics=metrics, tag=tag, height=height, width=width)
    print(entry_stanza(entry) + ",", file=file or sys.stdout)
    return entry


# ---------------------------------------------------------------------------------------------
# create_model(..., weights=...)
# ---------------------------------------------------------------------------------------------


def _is_path(weights):
    if isinstance(weights, os.PathLike):
        return True
    return any(s in weights for s in ("/", os.sep)) or weights.endswith((".h5", ".keras"))


def resolve_weights(model, cr, weights, *, height=32, width=32, overrides=None, weights_dir=None,
                    cache_dir=None, registry=None):
    """The file that ``create_model(model, cr=cr, weights=weights, ...)`` loads, verified.

    ``weights`` is a dataset name (``"cost2100-indoor"``: the entry ``(model, cr, dataset)``), an
    entry name (which must be for ``model`` at ``cr``), or the path of a ``.weights.h5`` file (a
    user's own file: loaded as is, without a checksum).
    """
    if not isinstance(weights, (str, os.PathLike)):
        raise ValueError(f"weights= takes None, a dataset name, an entry name or a .weights.h5 path. "
                         f"Received: weights={weights!r}")
    if _is_path(weights):
        path = Path(weights).expanduser()
        if path.name.endswith(".keras"):
            raise ValueError(f"weights= takes a .weights.h5 file; {path} is a whole .keras model: load it "
                             "with keras.saving.load_model (or mimokd.train.checkpoints.load_checkpoint)")
        if not path.is_file():
            raise FileNotFoundError(f"No weights file at {path} (weights={str(weights)!r})")
        return path
    if parse_entry_name(weights):  # an entry name: it must be this model's, at this ratio
        named = get_entry(weights, registry=registry)
        if (named.model, named.cr) != (model, cr):
            raise ValueError(f"The pretrained entry {named.name} is for {named.model} at cr {named.cr}; "
                             f"received model={model!r}, cr={cr}. Use create_model({named.model!r}, "
                             f"cr={named.cr}, weights={named.dataset!r})")
        entry = named
    else:
        entry = get_entry((model, cr, weights), registry=registry)
    if (height, width) != (entry.height, entry.width):
        raise ValueError(f"{entry.name} holds weights for {entry.height} x {entry.width} CSI; received "
                         f"height={height}, width={width}")
    architecture = sorted(k for k in (overrides or {}) if k != "name")
    if architecture:
        raise ValueError(f"{entry.name} holds weights for the {model} preset as registered; overrides "
                         f"{architecture} change its architecture. Load a file of your own with "
                         "weights='path/to/file.weights.h5'")
    return fetch_entry(entry, weights_dir=weights_dir, cache_dir=cache_dir, registry=registry)
