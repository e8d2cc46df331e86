"""The dataset API: named CSI sources, ``.mat`` files and folders, and tf.data pipelines.

A *source* is a function ``fn(*, split, num_samples, seed, progress) -> float32 [N, 2, 32, 32]``
registered under a name with :func:`register_source`; :func:`load_csi` resolves a name, a ``.mat``
file or a folder of COST2100 files to CSI tensors (layout of :mod:`mimokd.channels.layout`), and
:func:`make_dataset` turns them into a ``tf.data.Dataset`` of ``(x, x)`` (autoencoder) pairs.

Built-in sources:

* ``"builtin-indoor"``, ``"builtin-outdoor"``: :func:`mimokd.channels.builtin.generate_csi`. Each
  split draws from its own seed, derived from ``(seed, split)`` with ``numpy.random.SeedSequence``,
  so train, val and test never share a sample; ``num_samples=None`` gives the sizes of the public
  COST2100 splits (100,000 / 30,000 / 20,000).

A folder source is the folder holding the public ``DATA_H{train,val,test}{in,out}.mat`` files;
the scenario is chosen with the ``scenario="indoor" | "outdoor"`` argument of :func:`load_csi`
(a keyword rather than a suffix on the path, which could not be told apart from a real folder name).
"""

from __future__ import annotations

import json
import numbers
import os
import warnings
from pathlib import Path

import numpy as np

from mimokd.channels.builtin import generate_csi
from mimokd.channels.cost2100 import (
    COST2100_SCENARIOS,
    COST2100_SPLITS,
    cost2100_filename,
    find_cost2100,
    load_cost2100,
    save_cost2100,
)
from mimokd.channels.layout import check_csi
from mimokd.channels.shards import MANIFEST, load_shards, read_manifest, read_split
from mimokd.fileio import atomic_path, settings_differences, sha256_file, write_json
from mimokd.rng import SPLITS, split_seed

#: The record :func:`write_cost2100_dataset` keeps beside its files: settings, files' samples and sha256.
GENERATE_RECORD = "generate.json"

_SOURCES = {}


def register_source(name, fn, *, overwrite=False):
    """Registers a CSI source under ``name``.

    Args:
        name: a non-empty string without path separators, e.g. ``"cost2100-indoor"``.
        fn: callable ``fn(*, split, num_samples, seed, progress) -> float32 [N, 2, 32, 32]`` in [0, 1];
            ``num_samples=None`` asks for the source's default size of the split.
        overwrite: replace an existing source of that name instead of raising.

    Returns:
        ``fn``, so that ``register_source`` can be used as ``functools.partial(register_source, name)``.
    """
    if not isinstance(name, str) or not name or "/" in name or os.sep in name:
        raise ValueError(f"A source name must be a non-empty string without path separators. Received: name={name!r}")
    if not callable(fn):
        raise TypeError(f"A source must be callable. Received: fn={fn!r}")
    if name in _SOURCES and not overwrite:
        raise ValueError(f"A source named {name!r} is already registered; pass overwrite=True. Received: name={name!r}")
    _SOURCES[name] = fn
    return fn


def list_sources():
    """The names of the registered sources, sorted."""
    return sorted(_SOURCES)


def _check_split(split):
    if split not in SPLITS:
        raise ValueError(f"Unknown split; expected one of {list(SPLITS)}. Received: split={split!r}")


def _builtin_source(scenario):
    def source(*, split, num_samples, seed, progress):
        count = COST2100_SPLITS[split] if num_samples is None else num_samples
        return generate_csi(count, scenario, seed=split_seed(seed, split), progress=progress)

    source.__doc__ = f"The built-in {scenario} generator, one derived seed per split."
    return source


register_source("builtin-indoor", _builtin_source("indoor"))
register_source("builtin-outdoor", _builtin_source("outdoor"))


def _first(csi, num_samples, origin):
    if num_samples is None:
        return csi
    if num_samples > csi.shape[0]:
        raise ValueError(
            f"{origin} holds {csi.shape[0]} samples, fewer than asked for. Received: num_samples={num_samples}"
        )
    return csi[:num_samples]


def load_csi(source, *, split="train", num_samples=None, seed=0, scenario=None, progress=False):
    """Loads CSI tensors from a registered source, a COST2100 ``.mat`` file or a folder of them.

    Args:
        source: a registered name (see :func:`list_sources`), a path to a ``.mat`` file with key
            ``HT`` (``split`` and ``seed`` are then unused), a folder holding the public
            COST2100 files (``scenario`` is then required; ``split`` picks the file), or a folder
            written by ``mimokd data generate`` (:mod:`mimokd.channels.shards`; ``split`` picks
            its shards or file).
        split: ``"train"``, ``"val"`` or ``"test"``.
        num_samples: the number of samples; ``None`` = the source's default (for files, all of them;
            otherwise files give their first ``num_samples``).
        seed: non-negative integer, for generated sources.
        scenario: ``"indoor"`` or ``"outdoor"``: required for a folder source, where it picks the
            files; unused by a file; a registered source named ``...-indoor`` / ``...-outdoor``
            refuses the other scenario.
        progress: show the generators' progress bars.

    Returns:
        float32 ``[N, 2, 32, 32]`` = ``[batch, plane, angle, delay]``, values in [0, 1].

    Examples:
        >>> train = load_csi("builtin-indoor", split="train", num_samples=2000)
        >>> test = load_csi("data/COST2100", split="test", scenario="indoor")   # doctest: +SKIP
    """
    _check_split(split)
    if num_samples is not None and (
        isinstance(num_samples, bool) or not isinstance(num_samples, numbers.Integral) or num_samples < 1
    ):
        raise ValueError(f"`num_samples` must be a positive integer or None. Received: num_samples={num_samples!r}")
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"`seed` must be a non-negative integer. Received: seed={seed!r}")
    if not isinstance(source, (str, os.PathLike)):
        raise TypeError(f"`source` must be a source name or a path. Received: source={source!r}")

    if scenario is not None and scenario not in COST2100_SCENARIOS:
        raise ValueError(
            f"Unknown scenario; expected one of {list(COST2100_SCENARIOS)} or None. Received: scenario={scenario!r}"
        )

    if isinstance(source, str) and source in _SOURCES:
        named = next((s for s in COST2100_SCENARIOS if source.endswith(f"-{s}")), None)
        if scenario is not None and named is not None and scenario != named:
            raise ValueError(
                f"Source {source!r} is the {named} scenario, which contradicts the scenario asked for. "
                f"Received: scenario={scenario!r}"
            )
        csi = _SOURCES[source](split=split, num_samples=num_samples, seed=seed, progress=progress)
        csi = check_csi(csi, name=f"the CSI of source {source!r}")
        if num_samples is not None and csi.shape[0] != num_samples:
            raise ValueError(
                f"Source {source!r} returned {csi.shape[0]} samples instead of the {num_samples} asked for. "
                f"Received: num_samples={num_samples}"
            )
        return csi

    path = Path(source)
    if path.is_dir() and (path / MANIFEST).is_file():
        return _load_generated(path, split, num_samples)
    if path.is_dir():
        if scenario not in COST2100_SCENARIOS:
            raise ValueError(
                f"A folder of COST2100 files needs scenario={' or '.join(repr(s) for s in COST2100_SCENARIOS)}. "
                f"Received: scenario={scenario!r}"
            )
        file = find_cost2100(path, split, scenario)
        return _first(load_cost2100(file), num_samples, str(file))
    if path.is_file():
        return _first(load_cost2100(path), num_samples, str(path))
    text = os.fspath(source)
    if isinstance(source, os.PathLike) or "/" in text or os.sep in text or text.lower().endswith(".mat"):
        raise FileNotFoundError(
            f"No such .mat file or folder of COST2100 files (registered sources: {list_sources()}). "
            f"Received: source={text!r}"
        )
    raise ValueError(
        f"Unknown CSI source; expected one of {list_sources()}, a .mat file or a folder of COST2100 "
        f"files. Received: source={source!r}"
    )


def _load_generated(path, split, num_samples):
    """A folder of ``mimokd data generate``: its shards, or its ``.mat`` files."""
    if read_manifest(path)["format"] == "npz":
        return load_shards(path, split, num_samples)
    return _first(next(read_split(path, split)), num_samples, f"{path} ({split} split)")


def write_cost2100_dataset(source, out_dir, *, samples, scenario=None, seed=0, overwrite=False):
    """Writes the train, val and test CSI of a source as COST2100 ``.mat`` files (``mimokd generate``).

    ``out_dir/generate.json`` records the settings and each file's sample count and sha256, each
    file recorded before it is moved into place. A re-run with the same settings skips the files
    that match the record and rewrites missing or damaged ones (with a warning naming them). Other
    settings, or files at the target names that no record describes, are refused with the
    differences named, unless ``overwrite``: the files are then replaced, and those of the old
    settings that the new ones do not write are deleted.

    Args:
        source: a registered source or a folder, as for :func:`load_csi`; one file is refused (it
            cannot be three splits).
        out_dir: the folder of ``DATA_H{train,val,test}{in,out}.mat``.
        samples: ``{split: count or None}`` for the three splits (``None``: the source's default).
        scenario: ``"indoor"`` / ``"outdoor"``: the file names, and the files read from a folder
            source; default: ``"outdoor"`` if the source's name holds it, else ``"indoor"``.
        seed: int >= 0, of a generated source.
        overwrite: replace a dataset of other settings instead of refusing.

    Returns:
        the list of paths written (float32 ``HT``, ``(N, 2048)`` each).
    """
    text = os.fspath(source)
    if os.path.isfile(text):
        raise ValueError(f"--data {text} is one file, but train, val and test must be different data. Expected a "
                         "folder of COST2100 files (with --scenario), a folder of `mimokd data generate`, or a "
                         f"registered source ({', '.join(list_sources())})")
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"--out {out_dir} is a file; expected a folder for the .mat files")
    names = scenario or ("outdoor" if "outdoor" in text else "indoor")
    settings = {"source": text if text in _SOURCES else str(Path(text).resolve()), "scenario": names, "seed": seed,
                "samples": {split: samples.get(split) for split in SPLITS}}
    files = {split: out_dir / cost2100_filename(split, names) for split in SPLITS}
    record_path = out_dir / GENERATE_RECORD
    record = json.loads(record_path.read_text()) if record_path.is_file() else {"settings": settings, "files": {}}
    differences = settings_differences(record["settings"], settings)
    if differences and not overwrite:
        raise ValueError(f"{out_dir} holds a dataset of `mimokd generate` with other settings "
                         f"({'; '.join(differences)}); pass --overwrite to replace it, or choose another --out")
    stale = [out_dir / name for name in record["files"]] if differences else []
    if differences:
        record = {"settings": settings, "files": {}}
    unrecorded = [str(path) for path in files.values() if path.exists() and path.name not in record["files"]]
    if unrecorded and not overwrite:
        raise ValueError(f"{', '.join(unrecorded)} exist(s) and {record_path} does not record how; pass --overwrite "
                         "to replace them, or choose another --out")
    if differences:
        write_json(record_path, record)
        for path in stale:
            if path not in files.values():
                path.unlink(missing_ok=True)
    written = []
    for split, path in files.items():
        entry = record["files"].get(path.name)
        if entry is not None and path.exists():
            found = sha256_file(path)
            if found == entry["sha256"]:
                continue
            warnings.warn(f"{path} is damaged: sha256 {found} where {record_path} records {entry['sha256']}; "
                          "regenerating it", stacklevel=2)
        csi = load_csi(source, split=split, num_samples=samples.get(split), seed=seed,
                       **({"scenario": scenario} if scenario else {}))
        with atomic_path(path) as tmp:
            save_cost2100(tmp, csi)
            record["files"][path.name] = {"samples": len(csi), "sha256": sha256_file(tmp)}
            write_json(record_path, record)
        written.append(path)
    return written


def make_dataset(csi, *, batch_size, shuffle=False, seed=0, targets=None, drop_remainder=False):
    """A ``tf.data.Dataset`` of ``(x, x)`` pairs (or ``(x, targets)``) in batches.

    Samples are gathered by index, so shuffling permutes indices (cheap, exact) rather than filling
    a buffer of samples. With ``shuffle=True`` the order of every epoch follows from ``seed``: two
    datasets made with the same seed yield the same batches, epoch after epoch (each epoch reshuffles).

    Args:
        csi: float ``[N, 2, 32, 32]`` in [0, 1] (cast to float32).
        batch_size: positive integer.
        shuffle: reshuffle the samples every epoch.
        seed: integer seed of the shuffle.
        targets: optional array ``[N, ...]``, the second element of each pair (float64 is cast to
            float32); ``None`` gives the autoencoder pairs ``(x, x)``.
        drop_remainder: drop the last, smaller batch.

    Returns:
        ``tf.data.Dataset`` of ``(float32 [batch, 2, 32, 32], targets [batch, ...])``, prefetching.

    Examples:
        >>> ds = make_dataset(load_csi("builtin-indoor", num_samples=1000), batch_size=200, shuffle=True)
    """
    import tensorflow as tf  # imported here so that the numpy parts of channels load without TF

    x = check_csi(csi)
    if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) or batch_size < 1:
        raise ValueError(f"`batch_size` must be a positive integer. Received: batch_size={batch_size!r}")
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise ValueError(f"`seed` must be an integer. Received: seed={seed!r}")
    n = x.shape[0]
    if targets is not None:
        y = np.asarray(targets)
        if y.dtype.kind not in "biufc":
            raise TypeError(f"`targets` must be a numeric array. Received: targets.dtype={y.dtype}")
        if y.ndim == 0 or y.shape[0] != n:
            raise ValueError(
                f"`targets` must hold one entry per CSI sample ({n}). Received: targets.shape={y.shape}"
            )
        if y.dtype == np.float64:
            y = y.astype(np.float32)
        if y.dtype.kind in "fc" and not np.isfinite(y).all():
            raise ValueError("`targets` contains NaN or infinite values. Received: targets with non-finite entries")

    x_tensor = tf.constant(x)
    y_tensor = x_tensor if targets is None else tf.constant(y)
    indices = tf.data.Dataset.range(n)
    if shuffle:
        indices = indices.shuffle(n, seed=int(seed), reshuffle_each_iteration=True)
    batches = indices.batch(int(batch_size), drop_remainder=bool(drop_remainder))
    dataset = batches.map(
        lambda i: (tf.gather(x_tensor, i), tf.gather(y_tensor, i)),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    )
    return dataset.prefetch(tf.data.AUTOTUNE)
