"""Transforms between the spatial-frequency, angular-delay and [0, 1] CSI representations (numpy).

Layouts are those of :mod:`mimokd.channels.layout`.

DFT convention of eq. (4) of Cui et al., ``H = F_a H~ F_d``, as implemented by
:func:`to_angular_delay`:

* ``F_a`` is the orthonormal DFT over the antennas,
  ``F_a[k, n] = exp(-j 2 pi k n / Nt) / sqrt(Nt)`` (``numpy.fft.fft(..., norm="ortho")``). A path
  whose steering vector (eq. 2) has spatial frequency ``(d / lambda) sin(theta) = k / Nt`` lands in
  angular bin ``k`` (taken modulo ``Nt``: positive angles fill the first half of the bins, negative
  angles wrap around to the second half).
* ``F_d`` is the orthonormal inverse DFT over the subcarriers,
  ``F_d[n, m] = exp(+j 2 pi n m / Nsub) / sqrt(Nsub)`` (``numpy.fft.ifft(..., norm="ortho")``).
  With the subcarrier gains ``g_n = beta exp(-j 2 pi n df tau)`` of eq. (1), a path of delay ``tau``
  lands in delay tap ``m = tau * Nsub * df`` (the tap spacing is ``1 / bandwidth``), so the
  earliest paths occupy the FIRST taps, which are the ones kept. It is also the convention under
  which the rho code's forward FFT along the delay axis (:func:`csi_to_frequency`) goes back to
  the frequency domain.

Angle order (``angle_order``): ``"dft"`` keeps the DFT's bin order above (bin 0 = broadside,
``u = 0``; positive spatial frequencies first, negative ones wrapped to the second half).
``"centered"`` applies ``numpy.fft.fftshift`` over the angle axis, so that row ``k`` holds spatial
frequency ``(k - Nt / 2) / Nt``: ``u = -1`` (one endfire) in row 0, broadside in row ``Nt / 2``,
``u -> +1`` in the last row. The calibrated COST2100 recipes use ``"centered"``: the CsiNet
authors' published weights reconstruct our data markedly better in that order (measured in
``docs/results/cost2100/fidelity.md``). A permutation of the rows changes
neither the energy nor rho.

Both transforms being orthonormal, the full ``Nt x Nsub`` angular-delay matrix has the energy of the
spatial-frequency matrix (Parseval); truncation to the first ``n_delay`` taps then only drops the
energy of the later taps.
"""

from __future__ import annotations

import numbers

import numpy as np

from mimokd.channels.layout import CSI_ZERO, HF_NUM_SUBCARRIERS, NUM_DELAY_TAPS, RHO_FFT_SIZE

#: The orders of the angle axis that :func:`to_angular_delay` can produce (see the module docstring).
ANGLE_ORDERS = ("dft", "centered")

# A value of the CSI tensor may exceed [0, 1] by this much through float rounding and is clipped.
_RANGE_TOLERANCE = 1e-5


def _check_positive_int(value, name):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"`{name}` must be a positive integer. Received: {name}={value!r}")
    return int(value)


def _check_complex_batch(h, name):
    array = np.asarray(h)
    if not (np.issubdtype(array.dtype, np.complexfloating) or np.issubdtype(array.dtype, np.floating)):
        raise TypeError(
            f"`{name}` must be a complex (or real floating) array. Received: {name}.dtype={array.dtype}"
        )
    if array.ndim != 3:
        raise ValueError(
            f"`{name}` must have 3 axes [batch, rows, columns]. Received: {name}.shape={array.shape}"
        )
    if not np.isfinite(array).all():
        raise ValueError(f"`{name}` contains NaN or infinite values. Received: {name} with non-finite entries")
    return array


def _per_sample(scale, batch, name="scale"):
    """Returns ``scale`` as a float64 array broadcastable to ``[batch, 1, 1]``."""
    values = np.asarray(scale, dtype=np.float64)
    if values.ndim == 0:
        values = np.full((batch,), float(values))
    if values.shape != (batch,):
        raise ValueError(
            f"`{name}` must be a scalar or one value per sample, shape ({batch},). "
            f"Received: {name}.shape={values.shape}"
        )
    if not np.all(np.isfinite(values)) or np.any(values <= 0):
        raise ValueError(f"`{name}` must be finite and positive. Received: {name}={scale!r}")
    return values[:, None, None]


def to_angular_delay(h_freq, n_delay=NUM_DELAY_TAPS, angle_order="dft"):
    """Spatial-frequency CSI to the truncated angular-delay domain, eq. (4) of Cui et al.

    ``H = F_a H~ F_d`` with the orthonormal DFT over antennas and orthonormal inverse DFT over
    subcarriers described in the module docstring, then the first ``n_delay`` delay taps are kept.

    Args:
        h_freq: complex ``[batch, Nt, Nsub]``: antenna ``Nt``, subcarrier ``Nsub`` (``H~`` of eq. 4).
        n_delay: number of leading delay taps kept, ``1 <= n_delay <= Nsub``.
        angle_order: ``"dft"`` (bin 0 = broadside first) or ``"centered"`` (``fftshift``: broadside
            in row ``Nt // 2``), see the module docstring.

    Returns:
        complex64 ``[batch, Nt, n_delay]`` = ``[batch, angle, delay]``.

    Examples:
        >>> h = np.ones((1, 32, 1024), np.complex64)        # one path, angle 0, delay 0
        >>> H = to_angular_delay(h)
        >>> H.shape, int(np.argmax(np.abs(H[0]).ravel()))
        ((1, 32, 32), 0)
    """
    h = _check_complex_batch(h_freq, "h_freq")
    n_delay = _check_positive_int(n_delay, "n_delay")
    if n_delay > h.shape[2]:
        raise ValueError(
            f"`n_delay` cannot exceed the number of subcarriers ({h.shape[2]}). Received: n_delay={n_delay}"
        )
    if angle_order not in ANGLE_ORDERS:
        raise ValueError(f"`angle_order` must be one of {ANGLE_ORDERS}. Received: angle_order={angle_order!r}")
    angular = np.fft.fft(h.astype(np.complex128, copy=False), axis=1, norm="ortho")
    if angle_order == "centered":
        angular = np.fft.fftshift(angular, axes=1)
    delay = np.fft.ifft(angular, axis=2, norm="ortho")
    return np.ascontiguousarray(delay[:, :, :n_delay]).astype(np.complex64)


# |w| below this (in bins) counts as the removable singularity w = 0 of the Dirichlet kernel.
_SINGULAR = 1e-6


def _dirichlet(x, n, count):
    """The Dirichlet kernel ``D_n(x_p - j) = sin(pi (x_p - j)) / sin(pi (x_p - j) / n)`` for ``j = 0 .. count - 1``.

    Args:
        x: float64 ``[batch, paths]`` in ``[-1/2, n - 1/2)``, so that ``x - j`` stays off the
            singularities at ``+-n``; its removable singularity ``x = j`` gives the limit ``n``.
        n: the kernel's length; count: ``<= n``.

    Returns:
        float64 ``[batch, paths, count]``. Per element one product pair and a division, no sine:
        ``sin(pi (x - j)) = (-1)^j sin(pi x)`` and ``sin(pi (x - j) / n)`` expands by the angle
        difference formula into one sine and cosine per path and per ``j``.
    """
    angle = np.pi * np.arange(count) / n
    den = np.sin(np.pi * x / n)[..., None] * np.cos(angle) - np.cos(np.pi * x / n)[..., None] * np.sin(angle)
    num = np.sin(np.pi * np.mod(x, 2.0))[..., None] * np.where(np.arange(count) % 2 == 0, 1.0, -1.0)
    singular = np.abs(x[..., None] - np.arange(count)) < _SINGULAR
    if singular.any():
        den[singular] = 1.0
        num[singular] = n
    return np.divide(num, den, out=num)


def angular_delay_of_paths(gains, spatial, delay_taps, num_antennas, num_subcarriers, num_delay_taps,
                           first_frequency=0.0):
    """The truncated angular-delay matrix of a sum of plane-wave paths, in closed form.

    The paths' spatial-frequency channel is ``h[t, n] = sum_p g_p e^{j 2 pi s_p t}
    e^{-j 2 pi (f0 + n / Nsub) u_p}`` (antenna ``t``, subcarrier ``n``; ``s_p`` the spatial frequency
    ``(d / lambda) x`` of the steering vector, eq. (2) of Cui et al.; ``u_p = tau_p * bandwidth`` the
    delay in taps; ``f0`` the first subcarrier's frequency in units of the bandwidth). This returns
    ``to_angular_delay(h, num_delay_taps)`` (angle order ``"dft"``) without building ``h``: with
    ``z_p = Nt s_p``,

    ``H[k, m] = sum_p g_p e^{-j 2 pi f0 u_p} e^{j pi (Nt-1)(z_p-k)/Nt} sin(pi (z_p-k)) / sin(pi (z_p-k)/Nt)
    e^{j pi (Nsub-1)(m-u_p)/Nsub} sin(pi (m-u_p)) / sin(pi (m-u_p)/Nsub) / sqrt(Nt Nsub)``.

    The phases and the numerators separate into a factor per path and a factor per bin / tap, so each
    element costs one sine and a division, and the sum over paths is a real matrix product:
    ``O(P (Nt + taps) + Nt P taps)`` per sample instead of the ``O(Nt P Nsub)`` of ``h``. All in
    float64: within 1e-7 of the peak of an exact float64 evaluation, as ``to_angular_delay`` of the
    complex64 response (float32 kernels were 1e-4 off outdoors: a delay of hundreds of taps in
    float32 moves by 1e-5 taps).

    Args:
        gains: complex ``[batch, paths]``; a padding path has gain 0.
        spatial: float ``[batch, paths]``, ``s_p`` (finite).
        delay_taps: float ``[batch, paths]``, ``u_p`` (finite).
        num_antennas: ``Nt``; num_subcarriers: ``Nsub``; num_delay_taps: taps kept, ``<= Nsub``.
        first_frequency: ``f0``, the frequency of subcarrier 0 divided by the bandwidth (0 when the
            subcarriers start at baseband frequency 0).

    Returns:
        complex64 ``[batch, num_antennas, num_delay_taps]`` = ``[batch, angle, delay]``.
    """
    nt, nsub, taps = num_antennas, num_subcarriers, num_delay_taps
    delay_taps = np.asarray(delay_taps, np.float64)
    # The sums over antennas / subcarriers are periodic in z, u (periods nt, nsub): reduce into [-1/2, n - 1/2).
    z = np.mod(nt * np.asarray(spatial, np.float64) + 0.5, nt) - 0.5
    u = np.mod(delay_taps + 0.5, nsub) - 0.5
    # Per-path phases e^{-j 2 pi f0 u} e^{j pi (nt-1) z / nt} e^{-j pi (nsub-1) u / nsub} go with the gains
    # (f0 u of the unreduced delay: the carrier phase is not periodic in nsub) ...
    carrier_cycles = np.mod(first_frequency * delay_taps, 1.0)
    phases = (nt - 1) * z / nt - (nsub - 1) * u / nsub - 2.0 * carrier_cycles
    weights = np.asarray(gains) * np.exp(1j * np.pi * phases)
    weights = weights / np.sqrt(nt * nsub)
    angular = np.swapaxes(_dirichlet(z, nt, nt), 1, 2)  # [b, k, p]
    delay = _dirichlet(u, nsub, taps)  # [b, p, m]: D is even, D(m - u) = D(u - m)
    real = np.matmul(angular, delay * weights.real[..., None])  # [b, k, m]
    imag = np.matmul(angular, delay * weights.imag[..., None])
    # ... and per-bin / per-tap phases e^{-j pi (nt-1) k / nt} e^{j pi (nsub-1) m / nsub} multiply after the sum.
    outer = np.exp(1j * np.pi * ((nsub - 1) * np.arange(taps)[None, :] / nsub - (nt - 1) * np.arange(nt)[:, None] / nt))
    return ((real + 1j * imag) * outer).astype(np.complex64)


def peak_scale(h):
    """The per-sample scale that maps the largest ``|Re|`` / ``|Im|`` of each sample to 0 or 1.

    ``scale_b = 0.5 / max(|Re h_b|, |Im h_b|)``; an all-zero sample gets scale 1.

    Args:
        h: complex ``[batch, rows, columns]``.

    Returns:
        float64 ``[batch]``.
    """
    h = _check_complex_batch(h, "h")
    peak = np.maximum(np.abs(h.real), np.abs(h.imag)).reshape(h.shape[0], -1).max(axis=1)
    peak = peak.astype(np.float64)
    return np.where(peak > 0, 0.5 / np.where(peak > 0, peak, 1.0), 1.0)


def complex_to_csi(h, scale):
    """Complex angular-delay matrices to the [0, 1] CSI tensor: ``x = 0.5 + scale * (Re, Im)``.

    Args:
        h: complex ``[batch, 32, 32]`` = ``[batch, angle, delay]``.
        scale: positive float, or float ``[batch]`` (one scale per sample, e.g. :func:`peak_scale`).

    Returns:
        float32 ``[batch, 2, 32, 32]`` = ``[batch, plane, angle, delay]``, values in [0, 1].

    Raises:
        ValueError: when the scale sends a value outside [0, 1].
    """
    h = _check_complex_batch(h, "h")
    s = _per_sample(scale, h.shape[0]).astype(np.float32)
    csi = np.empty((h.shape[0], 2, *h.shape[1:]), np.float32)
    for plane, part in enumerate((h.real, h.imag)):
        np.multiply(part, s, out=csi[:, plane], casting="same_kind")
    csi += np.float32(CSI_ZERO)
    low, high = float(csi.min()), float(csi.max())
    if low < -_RANGE_TOLERANCE or high > 1 + _RANGE_TOLERANCE:
        raise ValueError(
            "`scale` sends CSI values outside [0, 1]; use at most 0.5 / max(|Re|, |Im|) "
            f"(see `peak_scale`). Received: scale giving min={low:.6g}, max={high:.6g}"
        )
    return np.clip(csi, 0.0, 1.0, out=csi)


def csi_to_complex(csi, scale=1.0):
    """The [0, 1] CSI tensor back to complex matrices: ``h = ((x_re - 0.5) + 1j (x_im - 0.5)) / scale``.

    Args:
        csi: float ``[batch, 2, rows, columns]`` (``[batch, 2, 32, 32]`` for the CSI tensor).
        scale: positive float or float ``[batch]``, the scale given to :func:`complex_to_csi`.

    Returns:
        complex64 ``[batch, rows, columns]`` = ``[batch, angle, delay]``.
    """
    x = np.asarray(csi)
    if not np.issubdtype(x.dtype, np.floating):
        raise TypeError(f"`csi` must be a real floating array. Received: csi.dtype={x.dtype}")
    if x.ndim != 4 or x.shape[1] != 2:
        raise ValueError(
            f"`csi` must have shape [batch, 2, rows, columns] (real / imaginary planes). "
            f"Received: csi.shape={x.shape}"
        )
    s = _per_sample(scale, x.shape[0])
    x = x.astype(np.float64) - CSI_ZERO
    return ((x[:, 0] + 1j * x[:, 1]) / s).astype(np.complex64)


def csi_to_frequency(csi, n_fft=RHO_FFT_SIZE, n_sub=HF_NUM_SUBCARRIERS):
    """The CSI tensor to frequency-domain CSI, the convention of the cosine similarity rho.

    Subtracts 0.5, zero-pads the delay axis (the last) from 32 to ``n_fft``, takes the forward FFT
    along it (``exp(-j 2 pi k m / n_fft)``, no normalization) and keeps the first ``n_sub``
    subcarriers. The angle axis is left as it is, as the reference rho code does; rho is invariant
    under the (unitary) angular DFT anyway.

    Args:
        csi: float ``[batch, 2, 32, 32]`` = ``[batch, plane, angle, delay]``.
        n_fft: FFT length, at least the number of delay taps.
        n_sub: subcarriers kept, at most ``n_fft``.

    Returns:
        complex64 ``[batch, 32, n_sub]``, the layout of ``HF_all`` reshaped to ``(N, 32, 125)``.
    """
    n_fft = _check_positive_int(n_fft, "n_fft")
    n_sub = _check_positive_int(n_sub, "n_sub")
    h = csi_to_complex(csi).astype(np.complex128)
    if n_fft < h.shape[2]:
        raise ValueError(
            f"`n_fft` must be at least the number of delay taps ({h.shape[2]}). Received: n_fft={n_fft}"
        )
    if n_sub > n_fft:
        raise ValueError(f"`n_sub` cannot exceed n_fft={n_fft}. Received: n_sub={n_sub}")
    spectrum = np.fft.fft(h, n=n_fft, axis=2)  # numpy zero-pads the last axis to n_fft
    return np.ascontiguousarray(spectrum[:, :, :n_sub]).astype(np.complex64)
