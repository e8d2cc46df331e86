"""Fidelity of regenerated CSI to the data a published model was trained on, measured with that model.

The CsiNet authors' published Keras weights (``model_CsiNet_{indoor,outdoor}_dim{128,64,32}``,
imported by :func:`mimokd.pretrained.importers.import_csinet_keras` into a ``csinet_authors``
model) were trained and tested on the original COST2100 files. Two measurements say how close our
regenerated CSI is to those files:

* **NMSE** (:func:`authors_nmse_db`): the model's reconstruction NMSE on our data, beside the one
  the CsiNet paper publishes on the original test set (:data:`PUBLISHED_CSINET_NMSE_DB`). A model
  scores its published figure only on data that looks like its training data; ``gap = ours -
  published < 0`` means our data is easier for it than the original, ``> 0`` harder.
* **Delay profile and amplitude** (:func:`first_layer_column_excess`): the model's first layer is a
  3x3 convolution (2 -> 2 channels, bias, ``'same'`` zero padding) followed by a BatchNorm that,
  in the authors' code, normalizes the LAST axis of ``channels_first`` tensors: it stores, per
  delay column ``w``, the mean and variance of the convolution's output over batch, angle rows and
  the 2 channels, accumulated over the original training set. Running the same convolution on our
  CSI and taking the same per-column variance compares the two data sets column by column.

Excess variance. Write the CSI as ``X = 0.5 + h`` (``h`` the centred angular-delay matrix). The
convolution is affine, ``conv(X) = conv(0.5) + conv_0(h)`` (``conv_0``: no bias, zero padding), so
for data whose mean is zero at each position (random phases) the per-column variance of the
output is ``floor[w] + E[conv_0(h)^2][w]``. The *floor* is the per-column variance of the output
for an all-0.5 input (zero CSI): it comes only from the bias (the two channels differ) and from the
zero padding (edge rows and columns see fewer 0.5 inputs). ``excess = variance - floor`` is then the
energy of the data in column ``w`` (and its neighbours, through the 3x3 kernel) as the convolution
sees it: :func:`delay_profile` normalizes it to sum 1, :func:`amplitude_db` compares its total
with the original's.

Variance estimator. Keras' BatchNormalization (Keras 3, and the authors' Keras 2.0.9 with the
TensorFlow backend, ``tf.nn.moments``) updates ``moving_variance`` with the *population* (biased,
``1 / n``) variance of each training batch, ``n = batch x 32 rows x 2 channels`` per column; the
data route here uses the same estimator over the whole set. A batch's variance is the whole set's
minus the scatter of the batch mean about the set's mean, which for the authors' batches of 200
samples is at most 1/200 of the excess (under 0.02 dB), and less as the 64 values of a sample
decorrelate; the moving average (momentum 0.99) then averages about 100 such batches.

Examples:
    >>> from mimokd.pretrained.importers import import_csinet_keras
    >>> model = import_csinet_keras("model_CsiNet_indoor_dim128.json", "model_CsiNet_indoor_dim128.h5")
    >>> original = delay_profile(model)            # float64 [32], the training data's, sums to 1
    >>> ours = delay_profile(model, csi)           # csi: float32 [N, 2, 32, 32] in [0, 1]
    >>> total_variation(original, ours), amplitude_db(model, csi), authors_nmse_db(model, csi)
    >>> rows = fidelity_table("reference-weights/csinet-authors", {"indoor": csi_in, "outdoor": csi_out})
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mimokd.metrics import nmse_db

#: The CsiNet paper's Table I (Wen, Shih, Jin, IEEE WCL 2018): NMSE [dB] of CsiNet on the original
#: COST2100 test sets, ``{(scenario, cr): dB}``, for the ratios whose weights the authors published.
PUBLISHED_CSINET_NMSE_DB = {
    ("indoor", 16): -8.65,
    ("indoor", 32): -6.24,
    ("indoor", 64): -5.84,
    ("outdoor", 16): -4.51,
    ("outdoor", 32): -2.81,
    ("outdoor", 64): -1.93,
}
SCENARIOS = ("indoor", "outdoor")
AUTHORS_RATIOS = (16, 32, 64)
CSI_SIZE = 2 * 32 * 32  # the flattened CSI of the authors' files; codeword dim = CSI_SIZE / cr
FIRST_CONV = "enc_head_conv"
FIRST_BN = "enc_head_bn"
_ROUNDOFF = 1e-12  # an excess below this fraction of the floor is float64 round-off, i.e. none
_CHUNK = 4096  # samples convolved at a time (float64 [chunk, 34, 34, 2] = 75 MB at most)


def authors_file_stem(scenario, cr):
    """The authors' file name without suffix, ``model_CsiNet_{scenario}_dim{2048 / cr}``.

    E.g. ``authors_file_stem("indoor", 16) == "model_CsiNet_indoor_dim128"``; the folder holds
    ``<stem>.json`` (architecture) and ``<stem>.h5`` (weights).
    """
    if scenario not in SCENARIOS:
        raise ValueError(f"`scenario` must be one of {SCENARIOS}. Received: scenario={scenario!r}")
    if isinstance(cr, bool) or not isinstance(cr, (int, np.integer)) or cr < 1 or CSI_SIZE % cr:
        raise ValueError(f"`cr` must be a positive integer dividing {CSI_SIZE}. Received: cr={cr!r}")
    return f"model_CsiNet_{scenario}_dim{CSI_SIZE // int(cr)}"


# ---------------------------------------------------------------------------------------------
# The first convolution + column BatchNorm
# ---------------------------------------------------------------------------------------------


def _first_layers(model):
    """``(conv, bn)``: the first Conv2D and the per-column BatchNorm of a ``csinet_authors`` model.

    Raises:
        ValueError: the model has no such layers, or they are not the authors' form (a 3x3 2 -> 2
            convolution with bias and 'same' padding; a BatchNorm over axis 2 of channels-last
            tensors, one statistic per delay column).
    """
    encoder = getattr(model, "encoder", model)
    try:
        conv = encoder.get_layer(FIRST_CONV)
        bn = encoder.get_layer(FIRST_BN)
    except (ValueError, AttributeError):
        raise ValueError(
            f"The model {getattr(model, 'name', model)!r} has no layers {FIRST_CONV!r} + {FIRST_BN!r} in its "
            "encoder; expected a csinet_authors model (create_model('csinet_authors', cr=...) or "
            "mimokd.pretrained.importers.import_csinet_keras)"
        ) from None
    kernel_shape = tuple(int(d) for d in conv.kernel.shape)
    problems = []
    if kernel_shape != (3, 3, 2, 2):
        problems.append(f"{FIRST_CONV} kernel: expected (3, 3, 2, 2), got {kernel_shape}")
    if not conv.use_bias:
        problems.append(f"{FIRST_CONV}: expected a bias")
    if conv.padding != "same" or tuple(conv.strides) != (1, 1) or tuple(conv.dilation_rate) != (1, 1):
        problems.append(f"{FIRST_CONV}: expected padding 'same', strides 1, dilation 1; got "
                        f"{conv.padding!r}, {tuple(conv.strides)}, {tuple(conv.dilation_rate)}")
    if getattr(conv, "data_format", "channels_last") != "channels_last":
        problems.append(f"{FIRST_CONV}: expected channels_last, got {conv.data_format!r}")
    activation = getattr(conv.activation, "__name__", str(conv.activation))
    if activation != "linear":
        problems.append(f"{FIRST_CONV}: expected a linear activation, got {activation!r}")
    axis = bn.axis if isinstance(bn.axis, (list, tuple)) else [bn.axis]
    axis = [a % 4 for a in axis]
    if axis != [2]:
        problems.append(f"{FIRST_BN}: normalizes axis {bn.axis} of the channels-last [B, H, W, C] tensor; "
                        "expected axis 2, one statistic per delay column (batchnorm='columns', the authors' "
                        "published variant: create_model('csinet_authors', ...))")
    if problems:
        raise ValueError(f"The model {getattr(model, 'name', model)!r} is not the authors' CsiNet head:\n  "
                         + "\n  ".join(problems))
    return conv, bn


def _geometry(model, bn):
    """``(height, width)`` of the model's CSI: ``[batch, 2, height, width]``."""
    width = int(bn.moving_variance.shape[0])
    height = getattr(model, "height", None)
    if height is None:
        encoder = getattr(model, "encoder", model)
        height = encoder.input_shape[2]
    return int(height), width


def _check_csi(csi, height, width):
    array = np.asarray(csi)
    if array.ndim != 4 or array.shape[1:] != (2, height, width):
        raise ValueError(f"`csi` must be channels-first CSI [batch, 2, {height}, {width}] (real / imaginary "
                         f"planes, angle rows, delay columns). Received: csi.shape={array.shape}")
    if array.shape[0] < 1:
        raise ValueError("`csi` must hold at least one sample. Received: csi.shape="
                         f"{array.shape}")
    if not np.issubdtype(array.dtype, np.floating):
        raise TypeError(f"`csi` must be a float array in [0, 1] (0.5 = zero). Received: csi.dtype={array.dtype}")
    if not np.isfinite(array).all():
        raise ValueError("`csi` contains NaN or infinite values")
    return array


def _conv_columns(conv, csi):
    """Per-column ``(count, sum, sum of squares)`` of the first convolution's output, float64.

    Args:
        conv: the model's ``enc_head_conv`` (kernel ``[3, 3, 2, 2]`` HWIO, bias ``[2]``).
        csi: channels-first CSI ``[N, 2, H, W]``.

    Returns:
        ``(n, s, q)``: ``n`` int (``N * H * 2`` values per column), ``s`` and ``q`` float64 ``[W]``.
        The convolution is Keras' ``Conv2D(padding='same')`` (cross-correlation, zero padding),
        computed in float64.
    """
    kernel = np.asarray(conv.kernel.numpy(), np.float64)
    bias = np.asarray(conv.bias.numpy(), np.float64)
    n, _, height, width = csi.shape
    total, squares = np.zeros(width), np.zeros(width)
    for lo in range(0, n, _CHUNK):
        x = np.transpose(np.asarray(csi[lo : lo + _CHUNK], np.float64), (0, 2, 3, 1))  # [b, H, W, 2]
        x = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
        y = np.broadcast_to(bias, x[:, 1:-1, 1:-1, :].shape).copy()
        for i in range(3):
            for j in range(3):
                y += x[:, i : i + height, j : j + width, :] @ kernel[i, j]
        total += y.sum(axis=(0, 1, 3))
        squares += np.square(y).sum(axis=(0, 1, 3))
    return n * height * 2, total, squares


def _column_variance(conv, csi):
    """Population variance of the conv output per delay column, float64 ``[W]`` (over batch, rows, channels)."""
    count, total, squares = _conv_columns(conv, csi)
    mean = total / count
    return np.maximum(squares / count - mean**2, 0.0)


def first_layer_floor(model):
    """The per-column variance of the first convolution's output for zero CSI (all 0.5), float64 ``[W]``.

    It comes only from the bias (the two output channels differ) and the zero padding (edge rows
    and the two edge columns see fewer 0.5 inputs); see the module docstring.
    """
    conv, bn = _first_layers(model)
    height, width = _geometry(model, bn)
    return _column_variance(conv, np.full((1, 2, height, width), 0.5))


def first_layer_column_excess(model, csi=None):
    """The delay profile seen by the first conv + BatchNorm of a ``csinet_authors`` model.

    Args:
        model: a ``csinet_authors`` model (``create_model("csinet_authors", cr=...)`` or
            :func:`~mimokd.pretrained.importers.import_csinet_keras`): first layer a 3x3 Conv2D
            2 -> 2 with bias and 'same' padding, then a BatchNorm with one statistic per delay column.
        csi: ``None`` for the data the model was trained on (the BN's stored ``moving_variance``),
            or channels-first CSI float ``[N, 2, H, W]`` in [0, 1] (0.5 = zero), ``W`` delay
            columns: the population variance of the conv output on it, per column, over the
            ``N x H x 2`` values (the estimator Keras' BatchNorm tracks; see the module docstring).

    Returns:
        float64 ``[W]``: that per-column variance minus the floor (:func:`first_layer_floor`), the
        column's excess energy as the convolution sees it. Entries may be slightly negative for
        columns with (almost) no energy.

    Raises:
        ValueError: a model without the authors' first layers, or CSI of the wrong shape.
    """
    return _excess_and_floor(model, csi)[0]


def _excess_and_floor(model, csi):
    """``(excess, floor)``, float64 ``[W]`` each (see :func:`first_layer_column_excess`)."""
    conv, bn = _first_layers(model)
    height, width = _geometry(model, bn)
    floor = _column_variance(conv, np.full((1, 2, height, width), 0.5))
    if csi is None:
        variance = np.asarray(bn.moving_variance.numpy(), np.float64)
    else:
        variance = _column_variance(conv, _check_csi(csi, height, width))
    return variance - floor, floor


def _total_excess(excess, floor, label, clip):
    """Sum of the excess (clipped at 0 if ``clip``); refuses one lost in the floor's round-off."""
    total = (np.clip(excess, 0.0, None) if clip else excess).sum()
    if not total > _ROUNDOFF * max(float(np.abs(floor).sum()), np.finfo(float).tiny):
        raise ValueError(f"{label} has no excess variance over the zero-CSI floor (sum {total:.3g} against a "
                         f"floor of {floor.sum():.3g}): constant 0.5 CSI, or BatchNorm statistics that were "
                         "never trained")
    return total


def delay_profile(model, csi=None):
    """The excess of :func:`first_layer_column_excess` clipped at 0 and normalized to sum 1.

    Args:
        model: a ``csinet_authors`` model.
        csi: ``None`` (the training data's profile, from the stored BatchNorm statistics) or CSI
            float ``[N, 2, H, W]`` in [0, 1].

    Returns:
        float64 ``[W]``, non-negative, summing to 1: the share of excess variance per delay column.
    """
    label = "the model's stored BatchNorm statistics" if csi is None else "the CSI"
    excess, floor = _excess_and_floor(model, csi)
    return np.clip(excess, 0.0, None) / _total_excess(excess, floor, label, clip=True)


def amplitude_db(model, csi):
    """How much louder ``csi`` is than the model's training data, as the first convolution sees it.

    Args:
        model: a ``csinet_authors`` model.
        csi: CSI float ``[N, 2, H, W]`` in [0, 1].

    Returns:
        float, ``10 log10(sum excess(csi) / sum excess(stored))`` in dB (0 dB: the same level).
    """
    stored = _total_excess(*_excess_and_floor(model, None), "the model's stored BatchNorm statistics", clip=False)
    ours = _total_excess(*_excess_and_floor(model, csi), "the CSI", clip=False)
    return float(10.0 * np.log10(ours / stored))


def total_variation(p, q):
    """Total-variation distance ``0.5 * sum |p - q|`` of two distributions of the same shape, float.

    0 for equal profiles, 1 for disjoint supports (when both sum to 1).
    """
    p, q = np.asarray(p, np.float64), np.asarray(q, np.float64)
    if p.shape != q.shape:
        raise ValueError(f"`p` and `q` must have the same shape. Received: p.shape={p.shape}, q.shape={q.shape}")
    return float(0.5 * np.abs(p - q).sum())


def authors_nmse_db(model, csi, *, batch_size=200):
    """The model's NMSE on ``csi`` in the authors' convention, in dB.

    Subtract 0.5 from input and output, per-sample ``||H - H_hat||^2 / ||H||^2``, then ``10 log10``
    of the mean over the set (:func:`mimokd.metrics.nmse_db`, ``convention="global"``).

    Args:
        model: a CSI autoencoder, ``[N, 2, H, W] -> [N, 2, H, W]``.
        csi: CSI float ``[N, 2, H, W]`` in [0, 1].
        batch_size: prediction batch size.

    Returns:
        float, NMSE in dB.
    """
    height, width = getattr(model, "height", 32), getattr(model, "width", 32)
    csi = _check_csi(csi, height, width).astype(np.float32, copy=False)
    prediction = model.predict(csi, batch_size=batch_size, verbose=0)
    return nmse_db(csi, prediction, convention="global")


# ---------------------------------------------------------------------------------------------
# The table of the six published models
# ---------------------------------------------------------------------------------------------


def find_authors_models(weights_dir, scenarios=SCENARIOS, ratios=AUTHORS_RATIOS):
    """The authors' files present in ``weights_dir``.

    Returns:
        ``{(scenario, cr): (json path, h5 path, missing)}`` in scenario-major order, ``missing``
        the list of the pair's absent file names (empty when both are there).

    Raises:
        FileNotFoundError: ``weights_dir`` is not a folder.
    """
    weights_dir = Path(weights_dir)
    if not weights_dir.is_dir():
        raise FileNotFoundError(f"No weights folder at {weights_dir}")
    found = {}
    for scenario in scenarios:
        for cr in ratios:
            stem = authors_file_stem(scenario, cr)
            paths = (weights_dir / f"{stem}.json", weights_dir / f"{stem}.h5")
            found[(scenario, cr)] = (*paths, [p.name for p in paths if not p.is_file()])
    return found


def evaluate_model(model, csi, *, batch_size=200):
    """NMSE, delay-profile distance and amplitude of one model on ``csi``.

    Args:
        model: a ``csinet_authors`` model.
        csi: CSI float ``[N, 2, 32, 32]`` in [0, 1].

    Returns:
        dict: ``ours`` (NMSE dB), ``profile_tv`` (ours vs the BN-implied original),
        ``amplitude_db``, ``profile_original`` and ``profile_ours`` (lists of ``W`` floats).
    """
    original = delay_profile(model)
    ours = delay_profile(model, csi)
    return {
        "ours": authors_nmse_db(model, csi, batch_size=batch_size),
        "profile_tv": total_variation(original, ours),
        "amplitude_db": amplitude_db(model, csi),
        "profile_original": original.tolist(),
        "profile_ours": ours.tolist(),
    }


def fidelity_table(weights_dir, datasets, *, ratios=AUTHORS_RATIOS, batch_size=200, log=None):
    """Published vs measured NMSE and the delay-profile distance of the authors' models on our CSI.

    Args:
        weights_dir: folder with the authors' ``model_CsiNet_{scenario}_dim{D}.json`` / ``.h5``.
        datasets: ``{scenario: CSI float [N, 2, 32, 32] in [0, 1]}``, scenario ``"indoor"`` or
            ``"outdoor"`` (a scenario left out is not evaluated).
        ratios: compression ratios to look for (default 16, 32, 64: the published files).
        batch_size: prediction batch size.
        log: optional callable taking a progress line (e.g. ``print``).

    Returns:
        list of dicts, one per (scenario, ratio), scenario-major: ``scenario``, ``cr``, ``model``
        (file stem), ``published`` (dB, None if the paper has no figure), ``ours`` (dB), ``gap``
        (ours - published, dB), ``profile_tv``, ``amplitude_db``, ``profile_original``,
        ``profile_ours``, ``samples``, ``note``. A model whose files are absent gives a row with
        the measured fields None and ``note`` saying which file is missing.

    Raises:
        FileNotFoundError: no folder, or none of the asked-for files in it.
        ValueError: an unknown scenario or CSI of the wrong shape.
    """
    from mimokd.pretrained.importers import import_csinet_keras

    unknown = sorted(set(datasets) - set(SCENARIOS))
    if unknown:
        raise ValueError(f"`datasets` keys must be among {SCENARIOS}. Received: {unknown}")
    scenarios = [s for s in SCENARIOS if s in datasets]
    files = find_authors_models(weights_dir, scenarios, ratios)
    rows, found = [], 0
    checked = {s: _check_csi(datasets[s], 32, 32) for s in scenarios}
    for (scenario, cr), (json_path, h5_path, missing) in files.items():
        csi = checked[scenario]
        stem = authors_file_stem(scenario, cr)
        published = PUBLISHED_CSINET_NMSE_DB.get((scenario, cr))
        row = {"scenario": scenario, "cr": cr, "model": stem, "published": published, "ours": None,
               "gap": None, "profile_tv": None, "amplitude_db": None, "profile_original": None,
               "profile_ours": None, "samples": int(csi.shape[0]), "note": ""}
        if missing:
            row["note"] = f"skipped: {', '.join(missing)} absent"
            if log:
                log(f"{stem}: {row['note']}")
            rows.append(row)
            continue
        found += 1
        if log:
            log(f"{stem}: importing and evaluating on {csi.shape[0]} {scenario} samples")
        model = import_csinet_keras(json_path, h5_path)
        row.update(evaluate_model(model, csi, batch_size=batch_size))
        if published is not None:
            row["gap"] = row["ours"] - published
        rows.append(row)
    if rows and not found:
        raise FileNotFoundError(f"None of the authors' files in {weights_dir}: expected e.g. "
                                f"{rows[0]['model']}.json and .h5 (model_CsiNet_{{indoor,outdoor}}_dim{{128,64,32}})")
    return rows


__all__ = [
    "AUTHORS_RATIOS",
    "PUBLISHED_CSINET_NMSE_DB",
    "SCENARIOS",
    "amplitude_db",
    "authors_file_stem",
    "authors_nmse_db",
    "delay_profile",
    "evaluate_model",
    "fidelity_table",
    "find_authors_models",
    "first_layer_column_excess",
    "first_layer_floor",
    "total_variation",
]
