"""The MU-MIMO downlink of Kong et al., Sec. II: Rayleigh channels, DFT pilots, MMSE estimation.

A BS with ``M`` antennas serves ``K`` users with ``N`` antennas each. Layouts (numpy, complex64):

- channels ``H``: ``[batch, K, M, N]``, so that ``H_k = H[:, k]`` is the ``M x N`` matrix of
  Sec. II-A, entries i.i.d. CN(0, 1); user ``k`` receives ``y_k = H_k^H x + n_k``;
- pilots ``P = [p_1 ... p_L]``: ``[M, L]``, unit-norm columns (Sec. II-B);
- received pilots ``Y_k = [y_1,k ... y_L,k]``: ``Y[:, k]``, ``[batch, K, N, L]``, with
  ``y_l,k = sqrt(P_train) H_k^H p_l + n_k``, ``n_k ~ CN(0, I_N)`` (Sec. II-B, the receiver DNN's
  input ``Y_k^train`` of Sec. III);
- the receiver DNN's real input ``r^Re_k``: ``[batch, K, 2 N L]`` (Sec. III-B, input of eq. 4).

Random draws take a ``numpy.random.Generator`` or an int seed. A complex Gaussian array of shape
``S`` is always drawn as ``(g.standard_normal(S) + 1j * g.standard_normal(S)) / sqrt(2)`` in
float64, real parts first, then cast to complex64, so that a draw can be reproduced from the same
generator state.

Kong et al.'s own setting (``/work/shared/REFERENCE.md``): ``M = 8, N = 2, K = 4, L = M = 8,
P_train = 10``.
"""

from __future__ import annotations

import numbers

import numpy as np

from mimokd.rng import as_generator, complex_normal


def _positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"`{name}` must be a positive integer. Received: {name}={value!r}")
    return int(value)


def _check_p_train(p_train):
    if isinstance(p_train, bool) or not isinstance(p_train, numbers.Real) or not np.isfinite(p_train) \
            or p_train <= 0:
        raise ValueError(f"`p_train` must be a positive finite number (linear power). Received: p_train={p_train!r}")
    return float(p_train)


def _check_pilots(pilots):
    pilots = np.asarray(pilots)
    if pilots.ndim != 2 or pilots.shape[1] > pilots.shape[0]:
        raise ValueError(
            f"`pilots` must be a complex matrix [M, L] with L <= M (one pilot sequence per column). "
            f"Received: pilots.shape={pilots.shape}"
        )
    return pilots


def rayleigh_channels(batch, K, M, N, rng):
    """I.i.d. Rayleigh MU-MIMO channels of Sec. II-A.

    Args:
        batch: number of channel realizations.
        K: users. M: BS antennas. N: antennas per user.
        rng: a ``numpy.random.Generator`` or an int seed.

    Returns:
        complex64 ``[batch, K, M, N]``; ``H[:, k]`` is ``H_k`` in ``C^{M x N}``, entries i.i.d.
        CN(0, 1) (real and imaginary parts i.i.d. N(0, 1/2)).
    """
    shape = tuple(_positive_int(name, value) for name, value in (("batch", batch), ("K", K), ("M", M), ("N", N)))
    return complex_normal(as_generator(rng), shape, np.complex64)


def dft_pilots(M, L):
    """The ``L`` normalized pilot sequences of Sec. II-B, DFT columns.

    ``[P]_{i,l} = exp(j 2 pi i l / M) / sqrt(M)`` for ``i = 0 .. M-1``, ``l = 0 .. L-1``: the first
    ``L`` columns of the unitary ``M``-point DFT matrix, so the columns are orthonormal for every
    ``L <= M``. The paper writes the exponent as ``2 pi (i-1)(l-1) / L``; that is the same matrix at
    ``L = M`` (the only case the paper simulates), but for ``L < M`` it gives columns that are
    orthogonal only when ``L`` divides ``M``, so the ``M``-point form is used.

    Args:
        M: BS antennas (length of a pilot sequence).
        L: pilot length (number of sequences), ``1 <= L <= M``.

    Returns:
        complex64 ``[M, L]``, ``P^H P = I_L``; for ``L = M`` unitary.
    """
    M = _positive_int("M", M)
    L = _positive_int("L", L)
    if L > M:
        raise ValueError(f"dft_pilots needs L <= M (at most M orthogonal pilots). Received: M={M}, L={L}")
    rows = np.arange(M)[:, None]
    cols = np.arange(L)[None, :]
    return (np.exp(2j * np.pi * rows * cols / M) / np.sqrt(M)).astype(np.complex64)


def received_pilots(H, pilots, p_train, rng):
    """The received pilot signals ``Y_k`` of Sec. II-B.

    ``y_l,k = sqrt(P_train) H_k^H p_l + n_k`` for ``l = 1 .. L``, i.e.
    ``Y_k = sqrt(P_train) H_k^H P + N_k`` with ``N_k`` i.i.d. CN(0, 1). (Kong et al.'s code forms
    ``sqrt(P_train) H_k^T P`` instead, without the conjugate, and reads ``P`` from a file; for
    CN(0, 1) channels the pilot statistics are the same, but the map from ``H_k`` differs. This
    follows the paper.)

    Args:
        H: complex channels ``[batch, K, M, N]``.
        pilots: complex ``[M, L]`` (e.g. :func:`dft_pilots`).
        p_train: pilot transmit power ``P_train``, linear (Kong et al.: 10).
        rng: a ``numpy.random.Generator`` or an int seed. The noise is one CN(0, 1) draw of shape
            ``[batch, K, N, L]`` (see the module docstring for the draw order).

    Returns:
        complex64 ``[batch, K, N, L]``; ``Y[:, k, :, l]`` is ``y_{l+1},k``.
    """
    H = np.asarray(H)
    pilots = _check_pilots(pilots)
    p_train = _check_p_train(p_train)
    if H.ndim != 4 or H.shape[2] != pilots.shape[0]:
        raise ValueError(
            f"`H` must be complex [batch, K, M, N] with M = pilots.shape[0]. "
            f"Received: H.shape={H.shape}, pilots.shape={pilots.shape}"
        )
    rng = as_generator(rng)
    batch, K, _, N = H.shape
    clean = np.sqrt(p_train) * np.einsum("bkmn,ml->bknl", H.conj().astype(np.complex128), pilots.astype(np.complex128))
    noise = complex_normal(rng, (batch, K, N, pilots.shape[1]), np.complex64)
    return (clean + noise).astype(np.complex64)


def mmse_estimator(pilots, p_train):
    """The LMMSE filter ``W`` with ``H_hat_k = W Y_k^H``, complex128 ``[M, L]``.

    Each column ``h`` of ``H_k`` sees ``Y_k^H[:, n] = sqrt(P_train) P^H h + n``, ``h ~ CN(0, I_M)``,
    ``n ~ CN(0, I_L)``, independent across the ``N`` columns, so the LMMSE estimate (= the MMSE
    estimate, everything being jointly Gaussian) is ``W = C_hy C_yy^{-1}`` with
    ``C_hy = sqrt(P_train) P`` and ``C_yy = P_train P^H P + I_L``. It is evaluated in the
    equivalent ``M x M`` form ``W = sqrt(P_train) (I_M + P_train P P^H)^{-1} P`` (push-through
    identity), a solve, never an explicit inverse.
    """
    pilots = _check_pilots(pilots).astype(np.complex128)
    p_train = _check_p_train(p_train)
    M = pilots.shape[0]
    gram = np.eye(M) + p_train * pilots @ pilots.conj().T
    return np.linalg.solve(gram, np.sqrt(p_train) * pilots)


def mmse_estimate(Y, pilots, p_train):
    """The MMSE channel estimate ``H_tilde_k`` of Sec. II-B from the received pilots.

    Prior ``vec(H_k) ~ CN(0, I)`` (Sec. II-A), noise CN(0, 1). Closed form:

        ``H_tilde_k = sqrt(P_train) (I_M + P_train P P^H)^{-1} P Y_k^H``
        ``          = sqrt(P_train) P (P_train P^H P + I_L)^{-1} Y_k^H``,

    the posterior mean of ``H_k`` (see :func:`mmse_estimator`). With orthonormal pilots
    (``P^H P = I_L``, e.g. :func:`dft_pilots`) it is ``sqrt(P_train) / (1 + P_train) P Y_k^H``, and
    at ``L = M`` the per-entry MSE is ``1 / (1 + P_train)`` (least squares: ``1 / P_train``).

    Args:
        Y: received pilots, complex ``[batch, K, N, L]`` (:func:`received_pilots`).
        pilots: the pilots, complex ``[M, L]``.
        p_train: pilot power ``P_train``, linear.

    Returns:
        complex64 ``[batch, K, M, N]``.
    """
    Y = np.asarray(Y)
    pilots = _check_pilots(pilots)
    if Y.ndim != 4 or Y.shape[3] != pilots.shape[1]:
        raise ValueError(
            f"`Y` must be complex [batch, K, N, L] with L = pilots.shape[1]. "
            f"Received: Y.shape={Y.shape}, pilots.shape={pilots.shape}"
        )
    W = mmse_estimator(pilots, p_train)
    return np.einsum("ml,bknl->bkmn", W, Y.conj().astype(np.complex128)).astype(np.complex64)


def pilots_to_real(Y):
    """The receiver DNN's real input ``r^Re_k`` of Sec. III-B (the input of eq. 4).

    ``r^C_k`` stacks the columns of ``Y_k`` (``N x L``) from the first to the last,
    ``r^C_k[l N + n] = [Y_k]_{n, l}``; then ``r^Re_k = [Re(r^C_k); Im(r^C_k)]`` (Kong et al.'s code
    orders it the same way). ``2 N L`` reals: 32 for ``N = 2, L = 8``.

    Args:
        Y: received pilots, complex ``[batch, K, N, L]``.

    Returns:
        float32 ``[batch, K, 2 N L]``.
    """
    Y = np.asarray(Y)
    if Y.ndim != 4:
        raise ValueError(f"`Y` must be complex [batch, K, N, L]. Received: Y.shape={Y.shape}")
    batch, K, N, L = Y.shape
    stacked = np.swapaxes(Y, -1, -2).reshape(batch, K, N * L)
    return np.concatenate([stacked.real, stacked.imag], axis=-1).astype(np.float32)
