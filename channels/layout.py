"""Tensor layouts of the CSI-feedback data, written down once for the whole project.

Every other module of ``mimokd`` that handles CSI refers to the layouts below by name.

CSI tensor (public API and on disk)
    ``float32 [batch, 2, 32, 32]`` = ``[batch, plane, angle, delay]``:

    * axis 1, ``plane``: 0 = real part, 1 = imaginary part (channels-first);
    * axis 2, ``angle``: the 32 angular bins, i.e. the DFT over the 32 BS antennas of the ULA;
    * axis 3, ``delay``: the first 32 delay taps of the DFT over the subcarriers.

    Values lie in ``[0, 1]``; ``0.5`` means zero (``x = 0.5 + scale * Re/Im``). The LAST axis is
    the delay axis: the reference code of the cosine similarity rho zero-pads the last axis from 32
    to 257 and FFTs along it to return to the frequency domain (see
    :func:`mimokd.channels.transforms.csi_to_frequency`). The COST2100 files store this tensor as
    ``HT``, a float array of shape ``(N, 2048)``, flattened in C order (real plane then imaginary
    plane, each ``32 x 32`` row-major with the delay index varying fastest).

Complex angular-delay matrix
    ``complex64 [batch, 32, 32]`` = ``[batch, angle, delay]``: ``real plane + 1j * imag plane`` of
    the CSI tensor after subtracting 0.5 (and dividing by the scale).

Frequency-domain CSI
    ``complex64 [batch, 32, 125]`` = ``[batch, antenna, subcarrier]``. The COST2100 files store it
    as ``HF_all``, complex ``(N, 4000)`` = ``(N, 32 * 125)`` flattened in C order (subcarrier index
    varying fastest).
"""

from __future__ import annotations

import numpy as np

#: Number of BS antennas of the ULA, and of angular bins of the angular-delay matrix.
NUM_ANTENNAS = 32
#: Number of delay taps kept after the DFT over the subcarriers.
NUM_DELAY_TAPS = 32
#: Number of real planes of the CSI tensor (real, imaginary).
NUM_PLANES = 2
#: Shape of one CSI sample ``[plane, angle, delay]``.
CSI_SHAPE = (NUM_PLANES, NUM_ANTENNAS, NUM_DELAY_TAPS)
#: Axis of the CSI tensor ``[batch, plane, angle, delay]`` that holds the angle.
ANGLE_AXIS = 2
#: Axis of the CSI tensor ``[batch, plane, angle, delay]`` that holds the delay.
DELAY_AXIS = 3
#: Width of a row of the COST2100 ``HT`` array (``2 * 32 * 32``).
HT_WIDTH = NUM_PLANES * NUM_ANTENNAS * NUM_DELAY_TAPS
#: FFT length of the rho convention: the 32 delay taps zero-padded to 257.
RHO_FFT_SIZE = 257
#: Subcarriers kept by the rho convention, and stored in ``HF_all``.
HF_NUM_SUBCARRIERS = 125
#: Width of a row of the COST2100 ``HF_all`` array (``32 * 125``).
HF_WIDTH = NUM_ANTENNAS * HF_NUM_SUBCARRIERS
#: The value of the CSI tensor that means a zero channel coefficient.
CSI_ZERO = 0.5


def check_csi(csi, *, name="csi", shape=CSI_SHAPE):
    """Validates a CSI tensor and returns it as a float32 numpy array.

    Args:
        csi: real floating array, ``[batch, 2, 32, 32]`` (or ``[batch, *shape]``), values in [0, 1].
        name: the argument's name, used in the error messages.
        shape: the expected shape of one sample.

    Returns:
        ``float32 [batch, *shape]``, the same values.

    Raises:
        TypeError: ``csi`` is not a real floating array.
        ValueError: wrong shape, an empty batch, a NaN / inf value, or a value outside [0, 1].
    """
    array = np.asarray(csi)
    if not np.issubdtype(array.dtype, np.floating):
        raise TypeError(
            f"`{name}` must be a real floating array (float32 CSI in [0, 1]). "
            f"Received: {name}.dtype={array.dtype}"
        )
    expected = (None, *shape)
    if array.ndim != len(expected) or tuple(array.shape[1:]) != tuple(shape):
        raise ValueError(
            f"`{name}` must have shape [batch, {', '.join(str(s) for s in shape)}] "
            f"([batch, plane, angle, delay]). Received: {name}.shape={array.shape}"
        )
    if array.shape[0] == 0:
        raise ValueError(f"`{name}` holds no sample. Received: {name}.shape={array.shape}")
    array = array.astype(np.float32, copy=False)
    low, high = float(array.min()), float(array.max())
    if not (0.0 <= low and high <= 1.0):  # NaN propagates into min / max, so two passes check everything
        bad = int(array.size - np.count_nonzero(np.isfinite(array)))
        if bad:
            raise ValueError(
                f"`{name}` contains {bad} NaN or infinite value(s); CSI values must be finite, in [0, 1]. "
                f"Received: {name} with {bad} non-finite entries"
            )
        raise ValueError(
            f"`{name}` must hold values in [0, 1] (0.5 means zero). "
            f"Received: {name} with min={low:.6g}, max={high:.6g}"
        )
    return array
