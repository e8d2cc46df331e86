"""The COST2100 CSI-feedback dataset format: reading, writing and finding its ``.mat`` files.

The public dataset (CsiNet, CRNet, CLNet, BCRNet) is a set of MATLAB files:

* ``DATA_Htrain{in,out}.mat``, ``DATA_Hval{in,out}.mat``, ``DATA_Htest{in,out}.mat``: key ``HT``,
  float ``(N, 2048)``, the CSI tensor ``[N, 2, 32, 32]`` of :mod:`mimokd.channels.layout` flattened
  in C order, values in [0, 1] (0.5 = zero). ``in`` = indoor picocell 5.3 GHz, ``out`` = outdoor
  rural 300 MHz; 100,000 / 30,000 / 20,000 samples.
* ``DATA_HtestF{in,out}_all.mat``: key ``HF_all``, complex ``(N, 4000)``, the frequency-domain CSI
  ``[N, 32 antennas, 125 subcarriers]`` flattened in C order, used for the cosine similarity rho.

MATLAB v5 files are read with ``scipy.io``; v7.3 (HDF5) files with ``h5py`` when it is installed
(MATLAB stores arrays column-major, so their HDF5 datasets are read transposed).
"""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np
import scipy.io

from mimokd.fileio import atomic_path
from mimokd.channels.layout import (
    HF_NUM_SUBCARRIERS,
    NUM_ANTENNAS,
    NUM_DELAY_TAPS,
    NUM_PLANES,
    check_csi,
)

#: The splits of the public dataset and their number of samples.
COST2100_SPLITS = {"train": 100_000, "val": 30_000, "test": 20_000}
#: The scenarios of the public dataset and the suffix of their file names.
COST2100_SCENARIOS = {"indoor": "in", "outdoor": "out"}

_READ_ERRORS = (ValueError, TypeError, OSError, EOFError, IndexError, KeyError, zlib.error,
                scipy.io.matlab.MatReadError)


# --------------------------------------------------------------------------------------------------
# File names
# --------------------------------------------------------------------------------------------------
def cost2100_filename(split, scenario, *, frequency=False):
    """The public file name of a split: ``DATA_H{split}{in,out}.mat`` or ``DATA_HtestF{in,out}_all.mat``.

    Args:
        split: ``"train"``, ``"val"`` or ``"test"``.
        scenario: ``"indoor"`` or ``"outdoor"``.
        frequency: the file of the frequency-domain CSI ``HF_all`` (only for ``split="test"``).

    Returns:
        str, e.g. ``"DATA_Htrainin.mat"``.
    """
    if split not in COST2100_SPLITS:
        raise ValueError(f"Unknown split; expected one of {list(COST2100_SPLITS)}. Received: split={split!r}")
    if scenario not in COST2100_SCENARIOS:
        raise ValueError(
            f"Unknown COST2100 scenario; expected one of {list(COST2100_SCENARIOS)}. Received: scenario={scenario!r}"
        )
    suffix = COST2100_SCENARIOS[scenario]
    if frequency:
        if split != "test":
            raise ValueError(
                "The COST2100 dataset has frequency-domain CSI (HF_all) for the test split only. "
                f"Received: split={split!r}, frequency=True"
            )
        return f"DATA_HtestF{suffix}_all.mat"
    return f"DATA_H{split}{suffix}.mat"


def find_cost2100(directory, split="train", scenario="indoor", *, frequency=False):
    """Finds the public file of ``(split, scenario)`` in ``directory``.

    The exact name is looked for first, then the same name in any letter case.

    Args:
        directory: folder holding the COST2100 ``.mat`` files.
        split: ``"train"``, ``"val"`` or ``"test"``.
        scenario: ``"indoor"`` or ``"outdoor"``.
        frequency: find ``DATA_HtestF{in,out}_all.mat`` (key ``HF_all``) instead.

    Returns:
        ``pathlib.Path`` of the file.

    Raises:
        FileNotFoundError: the directory or the file is missing (the ``.mat`` files present are listed).
    """
    folder = Path(directory)
    if not folder.is_dir():
        raise FileNotFoundError(f"No directory of COST2100 files here. Received: directory={str(directory)!r}")
    name = cost2100_filename(split, scenario, frequency=frequency)
    candidate = folder / name
    if candidate.is_file():
        return candidate
    present = sorted(p.name for p in folder.iterdir() if p.is_file() and p.suffix.lower() == ".mat")
    for other in present:
        if other.lower() == name.lower():
            return folder / other
    raise FileNotFoundError(
        f"{name} (split {split!r}, scenario {scenario!r}) is not in {str(folder)!r}; "
        f".mat files present: {present or 'none'}. Received: directory={str(directory)!r}"
    )


# --------------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------------
def _check_file(path):
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"The .mat file does not exist. Received: path={str(path)!r}")
    if not path.is_file():
        raise IsADirectoryError(f"Expected a .mat file, not a directory. Received: path={str(path)!r}")
    return path


def _read_hdf5(path, key):
    """Reads ``key`` from a MATLAB v7.3 (HDF5) file, transposed back to MATLAB's row / column order."""
    try:
        import h5py
    except ImportError as err:
        raise ValueError(
            "This is a MATLAB v7.3 (HDF5) file; reading it needs the `h5py` package, which is not "
            f"installed. Install h5py or re-save the file as MATLAB v5 (`save -v7`). Received: path={str(path)!r}"
        ) from err
    try:
        with h5py.File(path, "r") as f:
            names = sorted(name for name in f.keys() if not name.startswith("#"))
            if key not in names:
                raise KeyError(f"Key {key!r} is not in {str(path)!r}; keys present: {names}. Received: key={key!r}")
            data = f[key][()]
    except KeyError:
        raise
    except _READ_ERRORS as err:
        raise ValueError(
            f"Could not read {str(path)!r} as a MATLAB v7.3 file ({type(err).__name__}: {err}). "
            f"Received: path={str(path)!r}"
        ) from err
    if data.dtype.names and {"real", "imag"} <= set(data.dtype.names):
        data = data["real"] + 1j * data["imag"]
    return np.asarray(data).T


def _read_mat(path, key):
    """Reads the array ``key`` of a ``.mat`` file, with errors naming the file and what was expected."""
    path = _check_file(path)
    try:
        variables = scipy.io.whosmat(path)
    except NotImplementedError:  # scipy's answer to MATLAB v7.3 (HDF5) files
        return _read_hdf5(path, key)
    except _READ_ERRORS as err:
        raise ValueError(
            f"{str(path)!r} is not a readable MATLAB .mat file (not a .mat file, or corrupt: "
            f"{type(err).__name__}: {err}). Received: path={str(path)!r}"
        ) from err
    names = sorted(name for name, _, _ in variables)
    if key not in names:
        raise KeyError(f"Key {key!r} is not in {str(path)!r}; keys present: {names}. Received: key={key!r}")
    try:
        return scipy.io.loadmat(path, variable_names=[key])[key]
    except _READ_ERRORS as err:
        raise ValueError(
            f"{str(path)!r} is corrupt or truncated: reading {key!r} failed "
            f"({type(err).__name__}: {err}). Received: path={str(path)!r}"
        ) from err


def _check_numeric(array, key, path, *, complex_ok):
    if array.dtype.kind not in ("iufc" if complex_ok else "iuf"):
        expected = "a numeric array" if complex_ok else "a real numeric array"
        raise TypeError(f"{key!r} in {str(path)!r} must be {expected}. Received: {key}.dtype={array.dtype}")


def _check_finite(array, key, path):
    finite = np.isfinite(array)
    if not finite.all():
        bad = int(array.size - np.count_nonzero(finite))
        rows = np.unique(np.nonzero(~finite)[0])
        raise ValueError(
            f"{key!r} in {str(path)!r} contains {bad} NaN or infinite value(s) (in {rows.size} sample(s), "
            f"first {rows[:5].tolist()}). Received: {key} with {bad} non-finite entries"
        )


def load_cost2100(path, key="HT", *, height=NUM_ANTENNAS, width=NUM_DELAY_TAPS):
    """Loads the CSI of a COST2100 ``.mat`` file (``HT``, float ``(N, 2 * height * width)``).

    Args:
        path: the ``.mat`` file (MATLAB v5; v7.3 too where ``h5py`` is installed).
        key: the variable holding the CSI.
        height: angle bins (rows) of one plane.
        width: delay taps (columns) of one plane.

    Returns:
        float32 ``[N, 2, height, width]`` = ``[batch, plane, angle, delay]``, values in [0, 1].

    Raises:
        FileNotFoundError: no such file. IsADirectoryError: the path is a folder.
        ValueError: not a .mat file or corrupt; wrong shape; an empty array; NaN / inf; values outside [0, 1].
        KeyError: no variable ``key`` (the keys present are listed).
        TypeError: a complex or non-numeric array.

    Examples:
        >>> csi = load_cost2100(find_cost2100("data/COST2100", "test", "indoor"))   # doctest: +SKIP
        >>> csi.shape
        (20000, 2, 32, 32)
    """
    data = np.asarray(_read_mat(path, key))
    _check_numeric(data, key, path, complex_ok=False)
    row = NUM_PLANES * height * width
    _check_rows(data, key, path, row,
                f"(N, 2 * {height} * {width}), one flattened [2, {height}, {width}] CSI sample per row")
    data = data.astype(np.float32, copy=False)
    _check_finite(data, key, path)
    low, high = float(data.min()), float(data.max())
    if low < 0.0 or high > 1.0:
        raise ValueError(
            f"{key!r} in {str(path)!r} must hold values in [0, 1] (0.5 means zero). "
            f"Received: {key} with min={low:.6g}, max={high:.6g}"
        )
    return np.ascontiguousarray(data).reshape(-1, NUM_PLANES, height, width)


def _check_rows(data, key, path, row, layout):
    """A file's array must be 2-D with ``row`` columns (``layout`` says what a row is) and not empty."""
    if data.ndim != 2 or data.shape[1] != row:
        raise ValueError(
            f"{key!r} in {str(path)!r} must have shape (N, {row}) = {layout}. "
            f"Received: {key}.shape={data.shape}"
        )
    if data.shape[0] == 0:
        raise ValueError(f"{key!r} in {str(path)!r} holds no sample. Received: {key}.shape={data.shape}")


def load_hf(path, key="HF_all", *, num_antennas=NUM_ANTENNAS, num_subcarriers=HF_NUM_SUBCARRIERS):
    """Loads the frequency-domain CSI of ``DATA_HtestF{in,out}_all.mat`` (``HF_all``, complex ``(N, 4000)``).

    Args:
        path: the ``.mat`` file.
        key: the variable holding the frequency-domain CSI.
        num_antennas: BS antennas.
        num_subcarriers: subcarriers kept.

    Returns:
        complex64 ``[N, num_antennas, num_subcarriers]`` = ``[batch, antenna, subcarrier]``.

    Raises:
        the errors of :func:`load_cost2100`, except the [0, 1] range, which does not apply.
    """
    data = np.asarray(_read_mat(path, key))
    _check_numeric(data, key, path, complex_ok=True)
    row = num_antennas * num_subcarriers
    _check_rows(data, key, path, row, f"(N, {num_antennas} antennas * {num_subcarriers} subcarriers)")
    _check_finite(data, key, path)
    return np.ascontiguousarray(data.astype(np.complex64)).reshape(-1, num_antennas, num_subcarriers)


# --------------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------------
def _check_hf(hf, num_samples):
    array = np.asarray(hf)
    if array.dtype.kind not in "fc":
        raise TypeError(f"`hf` must be a complex array. Received: hf.dtype={array.dtype}")
    width = NUM_ANTENNAS * HF_NUM_SUBCARRIERS
    if array.ndim == 3 and array.shape[1:] == (NUM_ANTENNAS, HF_NUM_SUBCARRIERS):
        array = array.reshape(array.shape[0], width)
    if array.ndim != 2 or array.shape[1] != width:
        raise ValueError(
            f"`hf` must have shape [N, {NUM_ANTENNAS}, {HF_NUM_SUBCARRIERS}] or (N, {width}). "
            f"Received: hf.shape={np.asarray(hf).shape}"
        )
    if array.shape[0] != num_samples:
        raise ValueError(
            f"`hf` must hold one sample per CSI sample ({num_samples}). Received: hf.shape={np.asarray(hf).shape}"
        )
    if not np.isfinite(array).all():
        raise ValueError("`hf` contains NaN or infinite values. Received: hf with non-finite entries")
    return np.ascontiguousarray(array.astype(np.complex64))


def save_cost2100(path, csi, hf=None, *, key="HT", hf_key="HF_all"):
    """Writes CSI (and optionally frequency-domain CSI) in the COST2100 ``.mat`` layout, atomically.

    Written through :func:`mimokd.fileio.atomic_path` (a temporary file in the same folder moved
    over ``path``), so an existing file is either left whole or replaced whole, never half written.
    Missing folders are created.

    Args:
        path: the ``.mat`` file to write.
        csi: float ``[N, 2, 32, 32]`` in [0, 1]; stored as ``key``, float32 ``(N, 2048)``.
        hf: optional complex ``[N, 32, 125]`` or ``(N, 4000)``; stored as ``hf_key``, complex64 ``(N, 4000)``.
        key: the variable name of the CSI.
        hf_key: the variable name of the frequency-domain CSI.

    Returns:
        ``pathlib.Path`` of the written file.
    """
    path = Path(path)
    if path.suffix.lower() != ".mat":
        raise ValueError(f"The COST2100 file name must end in .mat. Received: path={str(path)!r}")
    array = check_csi(csi)
    variables = {key: np.ascontiguousarray(array).reshape(array.shape[0], -1)}
    if hf is not None:
        if hf_key == key:
            raise ValueError(f"`key` and `hf_key` must differ. Received: key={key!r}, hf_key={hf_key!r}")
        variables[hf_key] = _check_hf(hf, array.shape[0])

    return _savemat(path, variables)


def save_hf(path, hf, *, key="HF_all"):
    """Writes frequency-domain CSI alone, as the public ``DATA_HtestF{in,out}_all.mat`` files, atomically.

    Args:
        path: the ``.mat`` file to write.
        hf: complex ``[N, 32, 125]`` or ``(N, 4000)``; stored as ``key``, complex64 ``(N, 4000)``.
        key: the variable name.

    Returns:
        ``pathlib.Path`` of the written file.
    """
    path = Path(path)
    if path.suffix.lower() != ".mat":
        raise ValueError(f"The COST2100 file name must end in .mat. Received: path={str(path)!r}")
    hf = np.asarray(hf)
    if hf.ndim < 1:
        raise ValueError(f"`hf` must be an array [N, 32, 125] or (N, 4000). Received: hf.shape={hf.shape}")
    return _savemat(path, {key: _check_hf(hf, hf.shape[0])})


# The 116-byte text at the start of a MAT 5 file. scipy writes the creation time there; a fixed text
# makes the bytes (and so the sha256 a dataset manifest records) depend on the data alone.
MAT_HEADER = b"MATLAB 5.0 MAT-file, written by mimokd".ljust(116)


def _savemat(path, variables):
    with atomic_path(path) as temporary, open(temporary, "wb") as f:
        scipy.io.savemat(f, variables, format="5")
        f.seek(0)
        f.write(MAT_HEADER)
    return path
