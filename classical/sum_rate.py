"""The achievable sum rate of eq. (1) of Kong et al., in numpy (evaluation) and TensorFlow (training).

Per-user rate with equal power ``P / M`` per precoder column and unit noise variance (Sec. II-A):

    ``R_k = log2 det(I_N + (P/M) sum_l H_k^H V_l V_l^H H_k)
          - log2 det(I_N + (P/M) sum_{l != k} H_k^H V_l V_l^H H_k)``,                      (1)

the sum rate being ``sum_k R_k``. Eq. (1) takes the expectation over channels; these functions
return the per-realization value (average over the batch for the expectation). The paper's stream
power is ``P / (K N)`` with ``tr(V_l^H V_l) = N``; it writes ``P / M``, which is the same at
``K = M / N`` (full load, as in all its simulations) and is what Kong et al.'s code uses. The
precoder normalization (unit-norm columns, so ``tr(V_l^H V_l) = N``) is the caller's: it is not
enforced here.

Layouts:

- ``H``: complex ``[batch, K, M, N]``, ``H_k = H[:, k]`` (see :mod:`mimokd.classical.mimo`);
- ``V = [V_1 ... V_K]``: complex ``[batch, M, K N]``, ``V_k = V[:, :, k N : (k+1) N]``;
- ``P``: the linear total transmit power (``db_to_linear(P_dB)``), a scalar, ``[batch]`` or
  ``[batch, 1]``.
"""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf

from mimokd.classical.checks import check_channel, check_power

_LN2 = math.log(2.0)


def db_to_linear(p_db):
    """``10 ** (p_db / 10)``; a float for a scalar, else a float64 array of the same shape."""
    out = np.power(10.0, np.asarray(p_db, np.float64) / 10.0)
    return float(out) if out.ndim == 0 else out


def _check_shapes(h_shape, v_shape):
    """Validates ``H [batch, K, M, N]`` and ``V [batch, M, K N]``; returns ``(K, M, N)``.

    ``None`` (unknown) batch sizes are accepted; ``K``, ``M``, ``N`` must be known.
    """
    h_shape, v_shape = tuple(h_shape), tuple(v_shape)
    if len(h_shape) != 4 or any(d is None for d in h_shape[1:]):
        raise ValueError(f"`H` must be complex [batch, K, M, N] with known K, M, N. Received: H.shape={h_shape}")
    if len(v_shape) != 3 or any(d is None for d in v_shape[1:]):
        raise ValueError(f"`V` must be complex [batch, M, K*N] with known M, K*N. Received: V.shape={v_shape}")
    _, K, M, N = h_shape
    if v_shape[1] != M or v_shape[2] != K * N:
        raise ValueError(
            f"`V` must be [batch, M, K*N] = [batch, {M}, {K * N}] for H of shape [batch, K, M, N] = "
            f"[batch, {K}, {M}, {N}]. Received: H.shape={h_shape}, V.shape={v_shape}"
        )
    if h_shape[0] is not None and v_shape[0] is not None and h_shape[0] != v_shape[0]:
        raise ValueError(
            f"`H` and `V` must have the same batch size. Received: H.shape={h_shape}, V.shape={v_shape}"
        )
    return K, M, N


def _check_power_shape(p_shape, batch):
    """Validates that P is a scalar, ``[batch]`` or ``[batch, 1]``; returns True when it is per sample."""
    p_shape = tuple(p_shape)
    ok = len(p_shape) == 0 or len(p_shape) == 1 or (len(p_shape) == 2 and p_shape[1] == 1)
    if ok and len(p_shape) >= 1 and None not in (p_shape[0], batch) and p_shape[0] != batch:
        ok = False
    if not ok:
        raise ValueError(
            f"`P` must be a scalar, [batch] or [batch, 1] (linear power) with batch = {batch}. "
            f"Received: P.shape={p_shape}"
        )
    return len(p_shape) > 0


def user_rates_np(H, V, P):
    """Per-user rates ``R_k`` of eq. (1), float64 ``[batch, K]``, in bits/s/Hz.

    Direct evaluation in complex128: the blocks ``H_k^H V_l V_l^H H_k`` are summed over ``l``
    (``l != k`` for the interference term) and each ``log2 det`` is taken with
    ``numpy.linalg.slogdet``, batched over samples and users.

    Args:
        H: complex channels ``[batch, K, M, N]``.
        V: complex precoders ``[batch, M, K N]``.
        P: linear total power, ``>= 0``: a scalar, ``[batch]`` or ``[batch, 1]``.
    """
    H = np.asarray(H)
    V = np.asarray(V).astype(np.complex128)
    K, M, N = _check_shapes(H.shape, V.shape)
    H = check_channel("H", H).astype(np.complex128)
    P = check_power("P", P)
    per_sample = _check_power_shape(P.shape, H.shape[0])
    scale = (P.reshape(-1) if per_sample else P)[..., None, None, None] / M  # [batch or 1, 1, 1, 1]

    # C[b, k, l] = H_k^H V_l, [batch, K, K, N, N]; Q[b, k, l] = H_k^H V_l V_l^H H_k.
    C = np.einsum("bkmi,bmlj->bklij", H.conj(), V.reshape(V.shape[0], M, K, N))
    Q = C @ np.swapaxes(C.conj(), -1, -2)
    total = Q.sum(axis=2)  # [batch, K, N, N]
    own = Q[:, np.arange(K), np.arange(K)]  # [batch, K, N, N]
    eye = np.eye(N)
    _, log_signal = np.linalg.slogdet(eye + scale * total)
    _, log_interference = np.linalg.slogdet(eye + scale * (total - own))
    return (log_signal - log_interference) / _LN2


def sum_rate_np(H, V, P):
    """Sum rate ``sum_k R_k`` of eq. (1), float64 ``[batch]`` (see :func:`user_rates_np`)."""
    return user_rates_np(H, V, P).sum(axis=-1)


def _logdet_hpd(A):
    """``ln det A`` of Hermitian positive definite ``A [..., N, N]`` via Cholesky, real ``[...]``."""
    chol = tf.linalg.cholesky(A)
    return 2.0 * tf.reduce_sum(tf.math.log(tf.math.real(tf.linalg.diag_part(chol))), axis=-1)


def _as_complex64(x):
    x = tf.convert_to_tensor(x)
    return x if x.dtype == tf.complex64 else tf.cast(x, tf.complex64)


def user_rates_tf(H, V, P):
    """Per-user rates ``R_k`` of eq. (1), float32 tensor ``[batch, K]``; see :func:`sum_rate_tf`."""
    H = _as_complex64(H)
    V = _as_complex64(V)
    K, M, N = _check_shapes(H.shape, V.shape)
    known_H = tf.get_static_value(H)  # eagerly, or a constant inside a tf.function
    if known_H is not None:
        check_channel("H", known_H)
    P = tf.cast(tf.convert_to_tensor(P), tf.float32)
    known = tf.get_static_value(P)
    if known is not None:
        check_power("P", known)
    if P.shape.rank is None:
        raise ValueError("`P` must have a known rank (a scalar, [batch] or [batch, 1]). Received: unknown rank")
    if _check_power_shape(P.shape, H.shape[0]):
        P = tf.reshape(P, [-1, 1, 1, 1])
    scale = tf.cast(P / M, tf.complex64)

    # G[b, k] = H_k^H V = [H_k^H V_1 ... H_k^H V_K], [batch, K, N, K N]; G G^H sums over all l.
    G = tf.linalg.matmul(H, V[:, None], adjoint_a=True)
    mask = np.ones((K, 1, K * N), np.float32)
    for k in range(K):
        mask[k, :, k * N : (k + 1) * N] = 0.0
    G_int = G * tf.constant(mask, tf.complex64)  # own block H_k^H V_k zeroed: the interference
    eye = tf.eye(N, dtype=tf.complex64)
    signal = eye + scale * tf.linalg.matmul(G, G, adjoint_b=True)
    interference = eye + scale * tf.linalg.matmul(G_int, G_int, adjoint_b=True)
    return (_logdet_hpd(signal) - _logdet_hpd(interference)) / _LN2


def sum_rate_tf(H, V, P):
    """Sum rate of eq. (1), float32 tensor ``[batch]``: batched, differentiable TensorFlow.

    The same quantity as :func:`sum_rate_np`, in complex64, for a loss (``-mean(sum_rate_tf)``,
    eq. 7 / 11) inside a Keras ``train_step`` or a ``tf.function``; the batch size may be unknown,
    ``K``, ``M``, ``N`` must be static. Gradients flow to ``V`` (and ``H``, ``P``); built from
    real tensors by ``tf.complex(re, im)``, ``V`` passes them on to ``re`` and ``im``. (For a
    complex variable TensorFlow's gradient is ``dL/dRe + j dL/dIm``.)

    Log-det choice: both matrices are ``I_N + X X^H`` with ``X = sqrt(P/M) H_k^H V_(l)``, Hermitian
    positive definite with every eigenvalue ``>= 1``, so a Cholesky factor always exists (no
    pivoting needed; the condition number is the largest eigenvalue, ``1 + ||X||_2^2``, a few
    thousand at 30 dB for Rayleigh channels and unit-norm columns, harmless in float32) and
    ``ln det = 2 sum ln Re(diag L)`` is real by construction. ``tf.linalg.slogdet`` would also
    work (same values and gradients), but it factorizes with pivoted LU, ignores the Hermitian
    structure and returns a complex log and a complex sign that carries rounding residue. The
    interference term is built from ``H_k^H V`` with the own block masked out, not as "total
    minus signal", so it keeps full relative precision when the own-user signal dominates (high
    P). NaN inputs give NaN rates (no exception).

    Args:
        H: complex channels ``[batch, K, M, N]`` (complex64; other dtypes are cast).
        V: complex precoders ``[batch, M, K N]``, ``V_k = V[:, :, k N : (k+1) N]``.
        P: linear total power, ``>= 0``: a scalar, ``[batch]`` or ``[batch, 1]``. Checked where its
            value is known when the graph is built (eagerly, or a constant in a ``tf.function``).

    Returns:
        float32 ``[batch]``, bits/s/Hz.

    Raises:
        ValueError: bad shapes, or a known ``P`` that is negative, NaN or infinite.
    """
    return tf.reduce_sum(user_rates_tf(H, V, P), axis=-1)
