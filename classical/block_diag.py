"""Block diagonalization (BD) and regularized BD (RBD) precoding of Kong et al., Sec. II-B.

The transmitter knows the fed-back channels ``H_hat_k`` (codewords, eq. 2, or, for the infinite
feedback reference, the estimates ``H_tilde_k``) and builds ``V = [V_1 ... V_K]``:

- BD (Ravindran & Jindal, the paper's [2]): ``Phi_k = [H_hat_1 .. H_hat_{k-1} H_hat_{k+1} ..
  H_hat_K]^H = E_{k,0} D_{k,0} G_{k,0}^H``; ``G_tilde_{k,0}`` = the last ``M - N(K-1)`` columns of
  ``G_{k,0}`` (a basis of the null space of ``Phi_k``); ``F_k^BD = H_hat_k^H G_tilde_{k,0} =
  E_{k,1} D_{k,1} G_{k,1}^H`` (compact); ``V_k = G_tilde_{k,0} G_{k,1}``.
- RBD (Stankovic & Haardt, the paper's [17], Sec. II-B there, without its water-filling):
  ``F_{k,0}^RBD = H_hat_k^H G_{k,0} (D_{k,0}^H D_{k,0} + alpha I)^(-1/2) = E_{k,2} D_{k,2} G_{k,2}^H``
  (compact), ``F_{k,1}^RBD = G_{k,0} (D_{k,0}^H D_{k,0} + alpha I)^(-1/2) G_{k,2}``,
  ``V_k = sqrt(N / tr(F^H F)) F`` with ``F = F_{k,1}^RBD``.

**Power normalization.** Every ``V_k`` has ``tr(V_k^H V_k) = ||V_k||_F^2 = N`` (Sec. II-A), so that
eq. (1)'s ``P / M`` per column (:func:`mimokd.classical.sum_rate.sum_rate_np`) is the paper's equal
power per user, total ``P K N / M`` (``= P`` at full load ``K = M / N``). BD's ``V_k`` has
orthonormal columns already (``G_tilde G_1`` is a product of semi-unitary factors), so no scaling
is applied; RBD's columns are not orthonormal in general and the whole ``V_k`` is scaled. The paper
prints the RBD factor as ``sqrt(N / tr(F_{k,1}^RBD))``, which is not defined for the ``M x N``
matrix ``F``; ``tr(F^H F)`` is the reading that gives ``tr(V_k^H V_k) = N``.

**Limits of RBD** (tested): ``alpha -> 0`` gives BD (the null-space directions get weight
``alpha^(-1/2)``, all others ``(sigma^2 + alpha)^(-1/2)``, so after normalization ``V_k ->
G_tilde_{k,0} G_{k,1}``, equal to BD's up to a phase per column); ``alpha -> inf`` gives the
per-user matched filter (eigen-beamforming) ``V_k -> U_k``, the dominant left singular vectors of
``H_hat_k`` (the codeword itself, up to a rotation), ignoring the other users.

Layouts: channels complex ``[batch, K, M, N]`` (``H_k = H[:, k]``), precoders complex64
``[batch, M, K N]`` (``V_k = V[:, :, k N : (k+1) N]``), powers linear. The linear algebra is done
in complex128.
"""

from __future__ import annotations

import numbers

import numpy as np

from mimokd.classical.checks import check_channel, check_power
from mimokd.classical.codebook import channel_basis, quantize
from mimokd.classical.sum_rate import sum_rate_np

SCHEMES = ("bd", "rbd")
# The alpha_BD grid searched when none is given: Stankovic & Haardt's alpha = M sigma^2 / P spans
# 8e-3 .. 8 for M = 8, P = 0 .. 30 dB; the grid covers it with two decades to spare on each side.
DEFAULT_ALPHAS = np.logspace(-4, 3, 29)


def _check_channels(name, H):
    """Finite channels ``[batch, K, M, N]`` with ``K N <= M``, as complex128."""
    H = np.asarray(H)
    if H.ndim != 4 or not np.issubdtype(H.dtype, np.number):
        raise ValueError(f"`{name}` must be complex [batch, K, M, N]. Received: {name}.shape={H.shape}")
    _, K, M, N = H.shape
    if K * N > M:
        raise ValueError(
            f"BD / RBD serve at most M / N users (K N <= M, Sec. II-A). Received: {name}.shape={H.shape} "
            f"(K={K}, M={M}, N={N})"
        )
    return check_channel(name, H).astype(np.complex128)


def _check_alpha(alpha):
    if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real) or not np.isfinite(alpha) or alpha <= 0:
        raise ValueError(f"`alpha` must be a finite number > 0. Received: alpha={alpha!r}")
    return float(alpha)


def _hermitian(x):
    return np.swapaxes(x.conj(), -1, -2)


def _others_svd(H, k):
    """Full SVD of ``Phi_k`` (the other users' channels, stacked as rows), ``[batch, M]`` squared
    singular values padded with zeros and ``G_{k,0}`` ``[batch, M, M]``."""
    batch, K, M, N = H.shape
    if K == 1:
        return np.zeros((batch, M)), np.broadcast_to(np.eye(M, dtype=np.complex128), (batch, M, M))
    others = np.delete(H, k, axis=1)  # [batch, K-1, M, N]
    phi = _hermitian(others).reshape(batch, (K - 1) * N, M)  # rows: H_l^H, l != k
    _, s, gh = np.linalg.svd(phi, full_matrices=True)
    d2 = np.zeros((batch, M))
    d2[:, : s.shape[-1]] = s**2
    return d2, _hermitian(gh)


def bd_precoder(H_hat):
    """BD precoders of Sec. II-B (Ravindran & Jindal) from the fed-back channels.

    Args:
        H_hat: complex ``[batch, K, M, N]``, ``K N <= M``: the quantized channels (codewords) or
            any channels the transmitter knows (only their column spaces matter).

    Returns:
        complex64 ``[batch, M, K N]``; ``V_k`` has orthonormal columns (``tr V_k^H V_k = N``) and
        ``H_hat_l^H V_k = 0`` for ``l != k``.
    """
    H = _check_channels("H_hat", H_hat)
    batch, K, M, N = H.shape
    V = np.empty((batch, M, K * N), np.complex128)
    for k in range(K):
        _, G0 = _others_svd(H, k)
        G_tilde = G0[:, :, N * (K - 1) :]  # null space of Phi_k, [batch, M, M - N(K-1)]
        F = _hermitian(H[:, k]) @ G_tilde  # F_k^BD, [batch, N, M - N(K-1)]
        _, _, g1h = np.linalg.svd(F, full_matrices=False)  # G_{k,1}^H, [batch, N, M - N(K-1)]
        V[:, :, k * N : (k + 1) * N] = G_tilde @ _hermitian(g1h)
    return V.astype(np.complex64)


def rbd_precoder(H_hat, alpha):
    """RBD precoders of Sec. II-B (Stankovic & Haardt's first stage, equal power per user).

    Args:
        H_hat: complex ``[batch, K, M, N]``, ``K N <= M``, the fed-back channels.
        alpha: ``alpha_BD > 0``, the regularization (chosen by :func:`best_alpha`). ``alpha -> 0``
            gives BD, ``alpha -> inf`` the per-user matched filter (module docstring).

    Returns:
        complex64 ``[batch, M, K N]`` with ``tr(V_k^H V_k) = N`` for every user.
    """
    H = _check_channels("H_hat", H_hat)
    alpha = _check_alpha(alpha)
    batch, K, M, N = H.shape
    V = np.empty((batch, M, K * N), np.complex128)
    for k in range(K):
        d2, G0 = _others_svd(H, k)
        W = G0 * (1.0 / np.sqrt(d2 + alpha))[:, None, :]  # G_{k,0} (D^H D + alpha I)^(-1/2)
        F0 = _hermitian(H[:, k]) @ W  # F_{k,0}^RBD, [batch, N, M]
        _, _, g2h = np.linalg.svd(F0, full_matrices=False)  # G_{k,2}^H, [batch, N, M]
        F1 = W @ _hermitian(g2h)  # F_{k,1}^RBD, [batch, M, N]
        norm2 = np.sum(np.abs(F1) ** 2, axis=(-2, -1))
        V[:, :, k * N : (k + 1) * N] = F1 * np.sqrt(N / norm2)[:, None, None]
    return V.astype(np.complex64)


def best_alpha(H_true, H_fed_back, P, alphas=DEFAULT_ALPHAS, *, return_rates=False):
    """``alpha_BD`` by brute force (Sec. IV-A): the ``alpha`` of ``alphas`` whose RBD precoders,
    built from ``H_fed_back``, give the largest mean sum rate of eq. (1) on ``H_true``, at one
    power ``P``.

    Args:
        H_true: the true channels, complex ``[batch, K, M, N]`` (the rate is measured on them).
        H_fed_back: what the transmitter knows, complex ``[batch, K, M, N]`` (codewords, or the
            estimates for the infinite-feedback reference).
        P: linear total power (one SNR point).
        alphas: candidate values, all ``> 0``.
        return_rates: also return the mean sum rate for every candidate, float64 ``[len(alphas)]``.

    Returns:
        float ``alpha`` (and the rates, if asked).
    """
    P = check_power("P", P, scalar=True)
    alphas = [_check_alpha(float(a)) for a in np.atleast_1d(np.asarray(alphas, np.float64))]
    if not alphas:
        raise ValueError("`alphas` must hold at least one candidate. Received: alphas=[]")
    rates = np.array([np.mean(sum_rate_np(H_true, rbd_precoder(H_fed_back, a), P)) for a in alphas])
    alpha = alphas[int(np.argmax(rates))]
    return (alpha, rates) if return_rates else alpha


def _precoder(scheme, H_hat, H_true, P, alpha, alphas):
    if scheme == "bd":
        return bd_precoder(H_hat)
    if scheme == "rbd":
        if alpha is None:
            alpha = best_alpha(H_true, H_hat, P, alphas)
        return rbd_precoder(H_hat, alpha)
    raise ValueError(f"`scheme` must be one of {SCHEMES}. Received: scheme={scheme!r}")


def limited_feedback_sum_rate(H_true, H_hat, codebooks, P, scheme="bd", alpha=None, *, distance="expected_sinr",
                              alphas=DEFAULT_ALPHAS):
    """Sum rate of eq. (1) of the codebook baseline: quantize (eq. 2), precode (BD / RBD), evaluate.

    Each user quantizes its estimate ``H_tilde_k`` with its codebook (:func:`quantize`, the
    expected-SINR distance by default, as in Sec. IV-A); the transmitter builds BD or RBD from the
    codewords; the rate is eq. (1) on the true channels.

    Args:
        H_true: true channels, complex ``[batch, K, M, N]``.
        H_hat: the users' channel estimates ``H_tilde_k`` (:func:`mimokd.classical.mimo.mmse_estimate`;
            pass ``H_true`` for perfect CSI at the receivers), complex ``[batch, K, M, N]``.
        codebooks: complex ``[K, 2**B, M, N]`` (one codebook per user, the paper's ``C_k``) or
            ``[2**B, M, N]`` (shared). With a shared codebook two users may feed back the same
            codeword, and BD then nulls a user's own subspace; per-user codebooks (e.g. Lloyd with
            different seeds) make that rarer.
        P: linear total power.
        scheme: ``"bd"`` or ``"rbd"``.
        alpha: ``alpha_BD`` for RBD; ``None`` searches ``alphas`` with :func:`best_alpha` on this
            very batch (the paper's per-SNR brute force; to tune on separate data, call
            :func:`best_alpha` yourself).
        distance: the quantization distance (:func:`quantize`).
        alphas: the grid searched when ``alpha`` is None.

    Returns:
        float64 ``[batch]``, the per-realization sum rate (bits/s/Hz).
    """
    H_true = _check_channels("H_true", H_true)
    H_hat = _check_channels("H_hat", H_hat)
    if H_true.shape != H_hat.shape:
        raise ValueError(
            f"`H_true` and `H_hat` must have the same shape. Received: {H_true.shape} and {H_hat.shape}"
        )
    P = check_power("P", P, scalar=True)
    K = H_true.shape[1]
    _, words = quantize(H_hat, codebooks, distance=distance, P=P, K=K)
    V = _precoder(scheme, words, H_true, P, alpha, alphas)
    return sum_rate_np(H_true, V, P)


def infinite_feedback_rbd_sum_rate(H_true, H_hat, P, alpha=None, *, alphas=DEFAULT_ALPHAS, cdi_only=False):
    """The infinite-feedback RBD reference of Fig. 2: the transmitter knows the estimates exactly.

    RBD built from the estimated channels ``H_tilde_k`` themselves (singular values included;
    ``cdi_only=True`` uses only their bases, :func:`mimokd.classical.codebook.channel_basis`, i.e.
    unquantized channel direction information), evaluated with eq. (1) on the true channels. The
    paper calls it an upper bound on limited-feedback RBD.

    Args:
        H_true: true channels, complex ``[batch, K, M, N]``.
        H_hat: channel estimates ``H_tilde_k``, complex ``[batch, K, M, N]``.
        P: linear total power.
        alpha: ``alpha_BD``; ``None`` searches ``alphas`` on this batch (:func:`best_alpha`).

    Returns:
        float64 ``[batch]``.
    """
    H_true = _check_channels("H_true", H_true)
    H_hat = _check_channels("H_hat", H_hat)
    P = check_power("P", P, scalar=True)
    known = channel_basis(H_hat) if cdi_only else H_hat
    return sum_rate_np(H_true, _precoder("rbd", known, H_true, P, alpha, alphas), P)


def baseline_flops(M, N, K, B, *, L=None):
    """FLOPs of channel estimation and quantization at one receiver of the codebook baseline
    (Kong et al., Sec. III-C, counting real multiplications and additions):

        ``2^B (32 M^2 N + 16 M N^2 + 16 N^3 - 4 M^2 - 4 M N - 8 N^2)
          + 16 M (L M + L N + M N) + 16 L^2 (M + N + L) - 4 L (M + N) - 8 L^2 - 8 M N``.

    The count is per user: ``K`` does not enter the formula (it is accepted, and checked, so that
    the call reads like the system's parameters). ``L`` is the pilot length, ``M`` by default as in
    all of the paper's simulations. ``L = M = 8, N = 2, B = 6`` gives 310,336, the paper's number.

    Returns:
        int.
    """
    def positive(name, value):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
            raise ValueError(f"`{name}` must be a positive integer. Received: {name}={value!r}")
        return int(value)

    M, N, K, B = (positive(n, v) for n, v in (("M", M), ("N", N), ("K", K), ("B", B)))
    L = M if L is None else positive("L", L)
    quantization = 2**B * (32 * M**2 * N + 16 * M * N**2 + 16 * N**3 - 4 * M**2 - 4 * M * N - 8 * N**2)
    estimation = 16 * M * (L * M + L * N + M * N) + 16 * L**2 * (M + N + L) - 4 * L * (M + N) - 8 * L**2 - 8 * M * N
    return quantization + estimation
