"""Input checks shared by the classical APIs (sum rates, BD / RBD, ZF / MRT / SLNR, WMMSE, codebooks).

Each names the argument it refuses, so that a NaN channel or a negative power is reported where it
enters, not as a NaN rate or a failed factorization further on.
"""

from __future__ import annotations

import numbers

import numpy as np


def check_channel(name, H):
    """``H`` (channels, or another complex array the API computes with) as a numpy array.

    Args:
        name: the argument's name, for the message.
        H: array-like of real or complex numbers, any shape (each API checks its own layout).

    Returns:
        ``numpy.asarray(H)``.

    Raises:
        ValueError: ``H`` is not numeric, or holds NaN or infinite values (counted in the message).
    """
    H = np.asarray(H)
    if not np.issubdtype(H.dtype, np.number):
        raise ValueError(f"`{name}` must be a numeric (complex) array. Received: {name}.dtype={H.dtype}")
    bad = H.size - np.count_nonzero(np.isfinite(H))
    if bad:
        raise ValueError(f"`{name}` holds {bad} NaN or infinite value(s) of {H.size}: channels must be finite. "
                         f"Received: {name}.shape={H.shape}")
    return H


def check_power(name, P, *, positive=False, scalar=False):
    """A linear power (or noise variance) ``P``: finite and ``>= 0``, or ``> 0`` where ``positive``.

    Args:
        name: the argument's name, for the message.
        P: a real number or, unless ``scalar``, an array-like of them (e.g. one per sample).
        positive: refuse 0 too (a noise variance, a power an API divides by).
        scalar: accept a real Python / numpy number only (not a bool, not an array).

    Returns:
        ``float(P)`` where ``scalar``, else a float64 array of ``P``'s shape.

    Raises:
        ValueError: a negative (or, where ``positive``, zero), NaN or infinite value, or a non-number.
    """
    expected = f"a finite number {'>' if positive else '>='} 0 (linear power, e.g. db_to_linear(P_dB))"
    if scalar and (isinstance(P, bool) or not isinstance(P, numbers.Real)):
        raise ValueError(f"`{name}` must be {expected}. Received: {name}={P!r}")
    try:
        values = np.asarray(P, np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"`{name}` must be {expected}. Received: {name}={P!r}") from None
    if not np.all(np.isfinite(values)) or np.any(values <= 0 if positive else values < 0):
        raise ValueError(f"`{name}` must be {expected}. Received: {name}={P!r}")
    return float(values) if scalar else values
