"""Atomic file writes: a file on disk is either the old one or the complete new one, never half.

Every writer in mimokd (checkpoints, datasets, tables, plots) goes through :func:`atomic_path`.
Keras and scipy write straight to the path they are given; an interrupted write would leave a
truncated file in place of a good one, so we hand them a temporary path in the same directory
and ``os.replace`` it (atomic on POSIX and Windows) once they succeed.

A full disk (or quota) while writing raises :class:`DiskFullError`, which names the file; the file
that was there before is left as it was.
"""

import contextlib
import ctypes
import errno
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path


class DiskFullError(OSError, ValueError):
    """No space (or quota) left while writing a file; the file that was there before is intact.

    An ``OSError`` (``errno`` ENOSPC or EDQUOT) and a ``ValueError``, so that callers that report
    bad input as one line report this as one line too.
    """


def _disk_full_error(err, path):
    """A :class:`DiskFullError` naming ``path`` if ``err`` says the disk (or the quota) is full (by its
    errno, or by h5py's message, which carries the errno in its text only), else ``err`` itself."""
    if err.errno not in (errno.ENOSPC, errno.EDQUOT) and "No space left on device" not in str(err):
        return err
    return DiskFullError(
        errno.ENOSPC,
        f"No space left on the device to write {path} ({err}); nothing was replaced: "
        f"{'the previous ' + path.name + ' is intact' if path.exists() else 'no file was written'}. "
        "Free some space (or choose another output folder) and run again",
    )


def sha256_file(path):
    """The sha256 hex digest of the file at ``path``, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside ``path``; move it onto ``path`` if the block succeeds.

    The temporary name keeps ``path``'s suffixes (Keras picks the format from them). Missing parent
    folders are created. Before the move the data is flushed to disk and the file gets the
    permissions a plain ``open`` would give it. On an exception the temporary file is removed and
    ``path`` is left untouched.

    Raises:
        DiskFullError: the disk or quota filled up during the write (or the move); names ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = "".join(path.suffixes)  # all of them: Keras wants ".weights.h5", not ".h5"
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name[:len(path.name) - len(suffix)]}.", suffix=suffix,
                                   dir=path.parent)
    except OSError as err:
        raise _disk_full_error(err, path) from err
    os.close(fd)
    try:
        yield Path(tmp)
        if os.path.isfile(tmp):
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp's 0600 would otherwise outlive the move
        os.replace(tmp, path)
    except OSError as err:
        found = _disk_full_error(err, path)
        if found is err:
            raise
        raise found from err
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_text(path, text):
    """Write ``text`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json(path, data):
    """Write ``data`` as indented JSON to ``path`` atomically."""
    write_text(path, json.dumps(data, indent=2, sort_keys=False) + "\n")


def _flatten(value, prefix=""):
    """``(dotted key, leaf value)`` pairs of nested dicts (an empty dict is a leaf)."""
    if isinstance(value, dict) and value:
        for key, item in value.items():
            yield from _flatten(item, f"{prefix}{key}.")
    else:
        yield prefix[:-1], value


def settings_differences(old, new):
    """The differences between two settings dicts, one line ``key: old -> new`` per differing entry.

    Nested dicts are compared leaf by leaf under dotted keys; values are written as JSON, and an
    entry that one side lacks shows as ``"(absent)"``. Keys come in ``old``'s order, then those
    only in ``new``. Used to refuse a run directory (``config.json``), a dataset (``manifest.json``,
    ``generate.json``) or a shard recorded with other settings than those requested.

    Returns:
        A list of strings, empty when the two agree; e.g. for ``{"seed": 0, "recipe": {"name":
        "cost2100-indoor"}}`` against ``{"seed": 1, "recipe": {"name": "cost2100-outdoor"}}``::

            ["seed: 0 -> 1", 'recipe.name: "cost2100-indoor" -> "cost2100-outdoor"']
    """
    old, new = dict(_flatten(old)), dict(_flatten(new))
    absent = "(absent)"
    return [f"{key}: {json.dumps(old.get(key, absent))} -> {json.dumps(new.get(key, absent))}"
            for key in [*old, *(k for k in new if k not in old)] if old.get(key, absent) != new.get(key, absent)]


def _remove(path):
    """Delete a file or a folder tree at ``path``, if anything is there."""
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()


def _exchange(a, b):
    """Swaps the paths ``a`` and ``b`` in one atomic step (Linux ``renameat2(RENAME_EXCHANGE)``).

    Returns:
        ``True`` once swapped; ``False`` where the C library or the file system cannot.
    """
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = (ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint)
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(code, os.strerror(code), str(b))


@contextlib.contextmanager
def atomic_dir(path):
    """Yield a temporary folder beside ``path``; swap it in for ``path`` if the block succeeds.

    For writers whose output is a folder (a TensorFlow SavedModel, a whole export). The new folder
    and an existing ``path`` are exchanged in one atomic step where the system allows it (Linux),
    then the old one is deleted: a kill at any instant leaves either the complete old folder or the
    complete new one under ``path``. Elsewhere the old one is renamed aside to ``.<name>.old``
    and the new one renamed in; a kill between the two renames leaves ``path`` absent and the old
    folder under the ``.old`` name, which the next ``atomic_dir(path)`` puts back first. On an
    exception the temporary folder is removed and ``path`` is untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    old = path.parent / f".{path.name}.old"
    if old.exists() and path.exists():  # left by a swap killed after its second rename
        _remove(old)
    elif old.exists():  # a swap killed between its two renames: put the old folder back
        os.replace(old, path)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        yield tmp
        if path.exists() and _exchange(tmp, path):
            _remove(tmp)  # now the old folder
        else:
            _remove(old)
            if path.exists():
                os.replace(path, old)
            os.replace(tmp, path)
            _remove(old)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
