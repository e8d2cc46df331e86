"""Random draws shared by every channel generator: one seed handling, one complex Gaussian.

A seeded function accepts a ``numpy.random.Generator`` or an int seed (:func:`as_generator`), and
every CN(0, 1) draw takes all real parts first, then all imaginary parts (:func:`complex_normal`),
so a documented seed gives the same channels on any machine. The train, val and test splits of a
generated dataset draw from seeds derived from ``(seed, split)`` (:func:`split_seed`).
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


#: The dataset splits, with the key that derives each split's seed.
SPLITS = {"train": 0, "val": 1, "test": 2}


def split_seed(seed, split):
    """The seed of a split of a generated dataset: a 63-bit integer derived from ``(seed, split)``.

    ``numpy.random.SeedSequence(seed, spawn_key=(k,))`` with ``k`` the split's key in :data:`SPLITS`,
    so train, val and test never share a draw.
    """
    if split not in SPLITS:
        raise ValueError(f"Unknown split; expected one of {list(SPLITS)}. Received: split={split!r}")
    sequence = np.random.SeedSequence(seed, spawn_key=(SPLITS[split],))
    return int(sequence.generate_state(1, np.uint64)[0] >> np.uint64(1))
