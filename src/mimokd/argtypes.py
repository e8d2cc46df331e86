"""Argument types of the ``mimokd`` command line: each converts and checks one value.

Each is a ``type=`` for ``argparse`` (or a ``convert`` of a list option): it returns the value, or
raises :class:`InvalidValue`, which argparse prints in its own words as ``mimokd CMD: error:
argument --NAME: MESSAGE`` (exit status 2). Being a ``ValueError`` too, it reads as bad input to
any other caller. The path types look at the disk once, when the command line is parsed, so a
file where a folder is expected, a folder where a file is expected, or an output location that
cannot be written is named before any work starts.
"""

import argparse
import math
import os
import tempfile
from pathlib import Path


class InvalidValue(argparse.ArgumentTypeError, ValueError):
    """A value its argument does not take; the message says what was expected and what came."""


def _int(text, expected, ok):
    try:
        value = int(text)
    except ValueError:
        raise InvalidValue(f"expected {expected}, got {text!r}") from None
    if not ok(value):
        raise InvalidValue(f"expected {expected}, got {text!r}")
    return value


def _float(text, expected, ok):
    try:
        value = float(text)
    except ValueError:
        raise InvalidValue(f"expected {expected}, got {text!r}") from None
    if not (math.isfinite(value) and ok(value)):
        raise InvalidValue(f"expected {expected}, got {text!r}")
    return value


def positive_int(text):
    """An integer > 0 (sample counts, epochs, batch sizes, workers, shards, threads)."""
    return _int(text, "a positive integer", lambda v: v > 0)


def nonnegative_int(text):
    """An integer >= 0 (seeds, shard numbers, warm-up calls)."""
    return _int(text, "an integer >= 0", lambda v: v >= 0)


def bits(text):
    """A quantizer's bits per value: an integer from 1 to 16."""
    return _int(text, "an integer from 1 to 16", lambda v: 1 <= v <= 16)


def compression_ratio(text):
    """A compression ratio ``1/gamma``: a positive integer that divides the ``2*32*32`` CSI values."""
    from mimokd.channels.layout import CSI_SHAPE

    size = math.prod(CSI_SHAPE)
    return _int(text, f"a compression ratio that divides the {size} CSI values (4, 8, 16, 32, 64, ...)",
                lambda v: v > 0 and size % v == 0)


def finite_float(text):
    """A finite number (not nan or inf)."""
    return _float(text, "a finite number", lambda v: True)


def positive_float(text):
    """A finite number > 0 (learning rates, temperatures, bandwidths)."""
    return _float(text, "a positive finite number", lambda v: v > 0)


def nonnegative_float(text):
    """A finite number >= 0 (weights of a loss term, radii)."""
    return _float(text, "a finite number >= 0", lambda v: v >= 0)


def unit_interval(text):
    """A number in [0, 1] (probabilities, loss mixing weights)."""
    return _float(text, "a number in [0, 1]", lambda v: 0 <= v <= 1)


def sparsity(text):
    """A fraction of weights to prune, in [0, 1)."""
    return _float(text, "a fraction in [0, 1)", lambda v: 0 <= v < 1)


def scaling(text):
    """``'peak'`` (per-sample normalization) or a positive finite global scale factor (a float)."""
    return text if text == "peak" else _float(text, "'peak' or a positive finite number", lambda v: v > 0)


def existing_file(text):
    """The path of a file that exists (an input: a checkpoint, a pairs file), not a folder."""
    path = Path(text)
    if path.is_dir():
        raise InvalidValue(f"{text} is a folder; expected a file")
    if not path.is_file():
        raise InvalidValue(f"{text}: no such file")
    return text


#: The checkpoints of a run directory, in the order a command that takes the directory picks them.
RUN_CHECKPOINTS = ("best.keras", "final.keras")


def existing_checkpoint(text):
    """The path of a checkpoint file, or of a run directory that holds one of :data:`RUN_CHECKPOINTS`."""
    path = Path(text)
    if not path.exists():
        raise InvalidValue(f"{text}: no such file")
    if path.is_dir() and not any((path / name).is_file() for name in RUN_CHECKPOINTS):
        raise InvalidValue(f"{text} is a folder without {' or '.join(RUN_CHECKPOINTS)}; expected a .keras file or "
                           "a run directory that holds one")
    return text


def existing_dir(text):
    """The path of a folder that exists (an input: a dataset, offline weights), not a file."""
    path = Path(text)
    if path.exists() and not path.is_dir():
        raise InvalidValue(f"{text} is a file; expected a folder")
    if not path.is_dir():
        raise InvalidValue(f"{text}: no such folder")
    return text


def _writable_from(path, text):
    """Checks that ``path`` (absent) can be made: its nearest existing ancestor is a folder in which a
    folder can be created (tried, then removed: permission bits alone do not tell, e.g. for root or a
    read-only file system)."""
    ancestor = next(p for p in path.absolute().parents if p.exists())
    if not ancestor.is_dir():
        raise InvalidValue(f"{text} cannot be created: {ancestor} is a file, not a folder")
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".mimokd-write-check.", dir=ancestor))
    except OSError as err:
        raise InvalidValue(f"{text} cannot be written: {ancestor} is not writable ({err.strerror})") from None


def output_dir(text):
    """The path of an output folder: a folder, or absent and creatable in a writable place; not a file."""
    path = Path(text)
    if path.exists() and not path.is_dir():
        raise InvalidValue(f"{text} is a file; expected a folder (new, or one to write into)")
    _writable_from(path / "_", text)
    return text


def output_file(text):
    """The path of an output file: not a folder, in a folder that exists or can be made, writable."""
    path = Path(text)
    if path.is_dir():
        raise InvalidValue(f"{text} is a folder; expected a file name")
    _writable_from(path, text)
    return text


def csi_source(splits):
    """The ``--data`` type of a command that reads the CSI ``splits`` (e.g. ``("train", "val", "test")``).

    Its converter takes a registered source, a folder or a file, and refuses a file when ``splits``
    holds more than one: one file cannot serve as several splits, which must be different data.
    """
    splits = tuple(splits)

    def convert(text):
        if len(splits) > 1 and Path(text).is_file():
            raise InvalidValue(
                f"{text} is one file, but this command reads its {', '.join(splits)} splits, which must be "
                "different data. Expected a folder of COST2100 files (DATA_Htrain*.mat, DATA_Hval*.mat, "
                "DATA_Htest*.mat; with --scenario), a folder of `mimokd data generate`, or a registered source")
        return text

    return convert
