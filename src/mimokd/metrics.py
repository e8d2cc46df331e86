"""Accuracy of CSI reconstruction: NMSE (two averaging conventions) and the cosine similarity rho.

Both take CSI in the public layout, float ``[batch, 2, H, W]`` (real / imaginary planes of the
angular-delay matrix, ``H`` angular bins, ``W`` delay taps, values in [0, 1] with 0.5 = zero).

NMSE (Lu et al. eq. 6, Cui et al. eq. 12): subtract 0.5 from target and prediction, then
``||H - H_hat||^2 / ||H||^2`` per sample. The literature reports it in dB in two ways:

- ``"global"``: ``10 log10`` of the mean linear NMSE over the whole set (later repositories;
  what every mimokd table reports unless it says otherwise);
- ``"per_batch"``: the mean of per-batch dB values, a batch's value being ``10 log10`` of its
  mean linear NMSE (CRNet's tester, batch 200).

rho (CsiNet): zero-pad the delay axis to 257, FFT along it, keep the first 125 subcarriers, and
average ``|h_hat^H h| / (||h_hat|| ||h||)`` over samples and subcarriers, ``h`` being the vector
over the angular axis. The reference compares against the stored frequency-domain CSI
``HF_all``; when that is not at hand, the target CSI goes through the same transform.

Plain numpy functions and Keras metrics (for ``compile(metrics=...)``) are both given.
"""

import keras
import numpy as np
from keras import ops

from mimokd.channels.transforms import csi_to_frequency

RHO_FFT_SIZE = 257
RHO_SUBCARRIERS = 125
CONVENTIONS = ("global", "per_batch")


def nmse(y_true, y_pred):
    """Per-sample linear NMSE, float64 ``[batch]``, of CSI ``[batch, 2, H, W]`` in [0, 1]."""
    y_true = np.asarray(y_true, np.float64) - 0.5
    y_pred = np.asarray(y_pred, np.float64) - 0.5
    if y_true.shape != y_pred.shape:
        raise ValueError(
            f"Target and prediction must have the same shape. "
            f"Received: y_true.shape={y_true.shape}, y_pred.shape={y_pred.shape}"
        )
    axes = tuple(range(1, y_true.ndim))
    return np.sum((y_true - y_pred) ** 2, axis=axes) / np.sum(y_true**2, axis=axes)


def nmse_db(y_true, y_pred, *, convention="global", batch_size=200):
    """NMSE in dB over a set, in either convention (see the module docstring).

    Args:
        y_true, y_pred: CSI ``[N, 2, H, W]`` in [0, 1].
        convention: ``"global"`` (10 log10 of the mean) or ``"per_batch"`` (mean of batch dB).
        batch_size: batch size of the ``"per_batch"`` convention (the last batch may be smaller).

    Returns:
        float, NMSE in dB.
    """
    per_sample = nmse(y_true, y_pred)
    if convention == "global":
        return float(10 * np.log10(np.mean(per_sample)))
    if convention == "per_batch":
        starts = range(0, len(per_sample), batch_size)
        return float(np.mean([10 * np.log10(np.mean(per_sample[s : s + batch_size])) for s in starts]))
    raise ValueError(f"`convention` must be one of {CONVENTIONS}. Received: convention={convention!r}")


def rho(y_pred, reference):
    """Cosine similarity rho of reconstructed CSI, float.

    Args:
        y_pred: reconstructed CSI ``[N, 2, H, W]`` in [0, 1].
        reference: either the frequency-domain CSI, complex ``[N, H, 125]`` (``HF_all``
            reshaped), or target CSI ``[N, 2, H, W]`` in [0, 1] (then transformed like ``y_pred``).

    Returns:
        float in [0, 1], the mean over samples and subcarriers.
    """
    return float(np.mean(rho_per_sample(y_pred, reference)))


def rho_per_sample(y_pred, reference, *, chunk=1024):
    """Per-sample rho, float64 ``[N]`` (mean over the 125 subcarriers); see :func:`rho`.

    Computed ``chunk`` samples at a time: the 257-point spectra are complex128, 2.6 GB for 20,000
    samples. Measured on 20,000 samples: all at once raised the peak memory by 2.9 GB, in chunks
    by nothing measurable; rho is per sample, so the chunks change nothing else.
    """
    reference = np.asarray(reference)
    y_pred = np.asarray(y_pred)
    if len(reference) != len(y_pred):
        raise ValueError(f"The reference must hold one sample per prediction: received {len(reference)} "
                         f"(shape {reference.shape}) for {len(y_pred)} predictions (shape {y_pred.shape})")
    parts = []
    for start in range(0, max(len(y_pred), 1), chunk):
        ref = reference[start:start + chunk]
        if not np.iscomplexobj(ref):
            ref = csi_to_frequency(ref, RHO_FFT_SIZE, RHO_SUBCARRIERS)
        h_hat = csi_to_frequency(y_pred[start:start + chunk], RHO_FFT_SIZE, RHO_SUBCARRIERS)
        if ref.shape != h_hat.shape:
            expected = (len(y_pred),) + h_hat.shape[1:]
            raise ValueError(
                f"The reference must be frequency-domain CSI [N, H, {RHO_SUBCARRIERS}] matching the "
                f"prediction. Received: reference.shape={reference.shape}, expected {expected}"
            )
        inner = np.abs(np.sum(np.conj(h_hat) * ref, axis=1))
        norms = np.linalg.norm(h_hat, axis=1) * np.linalg.norm(ref, axis=1)
        parts.append(np.mean(inner / norms, axis=1))
    return np.concatenate(parts)


def _nmse_per_sample(y_true, y_pred):
    """Per-sample linear NMSE as a tensor op, ``[batch]``."""
    y_true = ops.reshape(ops.cast(y_true, "float32") - 0.5, (ops.shape(y_true)[0], -1))
    y_pred = ops.reshape(ops.cast(y_pred, "float32") - 0.5, (ops.shape(y_pred)[0], -1))
    return ops.sum(ops.square(y_true - y_pred), axis=1) / ops.sum(ops.square(y_true), axis=1)


@keras.saving.register_keras_serializable(package="mimokd")
class NMSE(keras.metrics.Metric):
    """NMSE in dB as a Keras metric, in either convention (see the module docstring).

    ``"global"`` accumulates the sum of per-sample linear NMSE and the sample count;
    ``"per_batch"`` accumulates the sum of batch dB values and the batch count (the batch being
    whatever ``fit`` / ``evaluate`` feeds, so its value depends on the batch size).
    """

    def __init__(self, convention="global", name="nmse", **kwargs):
        super().__init__(name=name, **kwargs)
        if convention not in CONVENTIONS:
            raise ValueError(
                f"`convention` must be one of {CONVENTIONS}. Received: convention={convention!r}"
            )
        self.convention = convention
        self.total = self.add_variable(shape=(), initializer="zeros", name="total")
        self.count = self.add_variable(shape=(), initializer="zeros", name="count")

    def update_state(self, y_true, y_pred, sample_weight=None):
        per_sample = _nmse_per_sample(y_true, y_pred)
        if self.convention == "global":
            self.total.assign_add(ops.sum(per_sample))
            self.count.assign_add(ops.cast(ops.shape(per_sample)[0], "float32"))
        else:
            self.total.assign_add(10.0 * ops.log10(ops.mean(per_sample)))
            self.count.assign_add(1.0)

    def result(self):
        mean = ops.divide_no_nan(self.total, self.count)
        return 10.0 * ops.log10(mean) if self.convention == "global" else mean

    def get_config(self):
        return {**super().get_config(), "convention": self.convention}


def _rho_tensor(y_true, y_pred):
    """Per-sample rho as a tensor op on CSI ``[batch, 2, H, W]``, ``[batch]``."""

    def frequency(csi):
        csi = ops.cast(csi, "float32") - 0.5
        pad = RHO_FFT_SIZE - ops.shape(csi)[-1]
        csi = ops.pad(csi, [[0, 0], [0, 0], [0, 0], [0, pad]])
        real, imag = ops.fft((csi[:, 0], csi[:, 1]))
        return real[..., :RHO_SUBCARRIERS], imag[..., :RHO_SUBCARRIERS]

    tr, ti = frequency(y_true)
    pr, pi = frequency(y_pred)
    # conj(p) * t summed over the angular axis (axis 1): (pr - i pi)(tr + i ti)
    inner_re = ops.sum(pr * tr + pi * ti, axis=1)
    inner_im = ops.sum(pr * ti - pi * tr, axis=1)
    inner = ops.sqrt(inner_re**2 + inner_im**2)
    norms = ops.sqrt(ops.sum(pr**2 + pi**2, axis=1) * ops.sum(tr**2 + ti**2, axis=1))
    return ops.mean(inner / norms, axis=1)


@keras.saving.register_keras_serializable(package="mimokd")
class Rho(keras.metrics.Mean):
    """Cosine similarity rho as a Keras metric, the target CSI standing in for ``HF_all``."""

    def __init__(self, name="rho", **kwargs):
        super().__init__(name=name, **kwargs)

    def update_state(self, y_true, y_pred, sample_weight=None):
        return super().update_state(_rho_tensor(y_true, y_pred), sample_weight=sample_weight)
