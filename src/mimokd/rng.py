"""Random draws shared by every channel generator: one seed handling, one complex Gaussian.

A seeded function accepts a ``numpy.random.Generator`` or an int seed (:func:`as_generator`), and
every CN(0, 1) draw takes all real parts first, then all imaginary parts (:func:`complex_normal`),
so a documented seed gives the same channels on any machine.
"""

import numbers

import numpy as np


def as_generator(rng):
    """A ``numpy.random.Generator`` from a generator (returned as is) or an int seed.

    Raises:
        TypeError: anything else.
    """
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, numbers.Integral) and not isinstance(rng, bool):
        return np.random.default_rng(int(rng))
    raise TypeError(
        f"`rng` must be a numpy.random.Generator or an int seed. Received: rng={rng!r} of type {type(rng).__name__}"
    )


def complex_normal(rng, shape, dtype=np.complex128):
    """CN(0, 1) entries of ``shape`` (real and imaginary parts N(0, 1/2)), as ``dtype``.

    Real parts are drawn first, then imaginary parts, in float64.
    """
    real = rng.standard_normal(shape)
    imag = rng.standard_normal(shape)
    return ((real + 1j * imag) / np.sqrt(2.0)).astype(dtype, copy=False)
