"""Multiuser MISO downlink of Zhang et al. (Sec. II): sum rate, ZF / MRT, WMMSE and the (p, q) features.

A BS with ``Nt`` antennas serves ``K`` single-antenna users, ``y_k = h_k^H w_k s_k + sum_{j != k}
h_k^H w_j s_j + n_k`` (eq. 1), with SINR (eq. 2)

    ``gamma_k = |h_k^H w_k|^2 / (sum_{j != k} |h_k^H w_j|^2 + sigma^2)``,

sum rate ``R = sum_k log2(1 + gamma_k)`` and the total power constraint ``sum_k ||w_k||^2 <= P``
(problem 3). The paper's ``N_0`` is ``noise`` (``sigma^2``) here.

**Beamforming structure (eq. 7).** The optimal beamformers have the uplink-downlink duality form

    ``w_k = sqrt(p_k) (sigma^2 I + sum_j q_j h_j h_j^H)^(-1) h_k / ||(sigma^2 I + sum_j q_j h_j h_j^H)^(-1) h_k||``

with ``sum_k p_k = sum_k q_k = P``: ``p`` the downlink powers, ``q`` the virtual uplink powers. The
paper prints ``I + sum_j (q_k / N_0) h_j h_j^H``; that is ``(sigma^2 I + sum_j q_j h_j h_j^H) /
sigma^2`` (same direction) with the index ``q_k`` inside the sum over ``j`` read as the typo it is
(``q_j``). :func:`recover_beamformers` implements it with the REFERENCE rescaling of ``p`` and ``q``
to sum to ``P``.

**WMMSE and its q (derived).** WMMSE (Shi, Razaviyayn, Luo, He 2011, the paper's [2]) with unit
weights alternates, for the current ``W``:

- MMSE receivers ``u_k = h_k^H w_k / T_k``, ``T_k = sum_j |h_k^H w_j|^2 + sigma^2``;
- MSE weights ``omega_k = 1 / e_k = 1 + gamma_k``;
- ``w_k = omega_k u_k (A + mu I)^(-1) h_k``, ``A = sum_j omega_j |u_j|^2 h_j h_j^H``, ``mu >= 0``
  the Lagrange multiplier of the power constraint (``mu = 0`` if that already meets it, else the
  root of ``sum_k ||w_k(mu)||^2 = P``, found by bisection on the eigenvalues of ``A``).

For ``mu > 0``, ``(A + mu I)^(-1) = (sigma^2 / mu) (sigma^2 I + sum_j q_j h_j h_j^H)^(-1)`` with

    ``q_j = sigma^2 omega_j |u_j|^2 / mu``,

so every WMMSE update is **exactly** of the form (7) with this ``q`` and ``p_k = ||w_k||^2`` (the
scalar ``omega_k u_k`` changes only the phase and the length of ``w_k``). At a fixed point (``u``,
``omega`` computed from the same ``W`` that the update returns), multiplying ``(A + mu I) w_k =
omega_k u_k h_k`` by ``w_k^H`` and summing over ``k`` gives ``sum_k w_k^H A w_k + mu P = sum_k
omega_k |u_k|^2 T_k``; the left sum is ``sum_j omega_j |u_j|^2 (T_j - sigma^2)``, hence ``mu P =
sigma^2 sum_j omega_j |u_j|^2``, i.e. ``sum_j q_j = P``: the duality constraint of eq. (7) holds
at convergence without rescaling (and to within the convergence tolerance before it). :func:`wmmse`
returns the ``q`` of its last update, which reproduces the returned ``W``'s directions exactly (up
to the rescaling to ``sum q = P`` done by the recovery, whose effect vanishes at convergence).
When the last update had ``mu = 0`` (the power constraint inactive, which does not happen at a
sum-rate optimum since scaling all ``w_k`` up raises every SINR), ``q`` is instead the uplink dual
power vector of ``W``'s directions from the duality linear system (:func:`dual_uplink_powers`).

Layouts: channels ``h`` complex ``[batch, K, Nt]`` (``h[:, k]`` is user ``k``'s ``h_k``, i.e. the
paper's ``H_D = [h_1 ... h_K]`` is ``h[b].T``); beamformers ``W`` complex ``[batch, Nt, K]``
(``W[:, :, k] = w_k``); ``P`` and ``noise`` linear, a scalar or ``[batch]``; powers ``p``, ``q``
float64 ``[batch, K]``. All linear algebra is in complex128.
"""

from __future__ import annotations

import numpy as np

from .checks import check_channel, check_power

INITS = ("mrt", "zf", "best")
_BISECTION_STEPS = 60


def _check_h(h):
    """Finite channels ``h`` ``[batch, K, Nt]`` as complex128."""
    h = np.asarray(h)
    if h.ndim != 3 or not np.issubdtype(h.dtype, np.number):
        raise ValueError(f"`h` must be complex [batch, K, Nt]. Received: h.shape={h.shape}")
    return check_channel("h", h).astype(np.complex128)


def _check_hw(h, W):
    h = _check_h(h)
    W = np.asarray(W)
    b, K, Nt = h.shape
    if W.ndim != 3 or W.shape != (b, Nt, K):
        raise ValueError(
            f"`W` must be complex [batch, Nt, K] = [{b}, {Nt}, {K}] for h of shape [batch, K, Nt] = "
            f"[{b}, {K}, {Nt}]. Received: W.shape={W.shape}"
        )
    return h, W.astype(np.complex128)


def _check_scalar_or_batch(name, x, batch):
    """A positive scalar or ``[batch]`` (``[batch, 1]`` accepted) -> float64 ``[batch]``."""
    x = np.asarray(x, np.float64)
    if x.ndim == 2 and x.shape[1] == 1:
        x = x[:, 0]
    if not (x.ndim == 0 or (x.ndim == 1 and x.shape[0] == batch)):
        raise ValueError(f"`{name}` must be a scalar or [batch] with batch = {batch}. Received: {name}.shape={x.shape}")
    return np.broadcast_to(check_power(name, x, positive=True), (batch,)).copy()


def _gains(h, W):
    """``|h_k^H w_j|^2`` as float64 ``[batch, K(k), K(j)]``."""
    return np.abs(np.einsum("bkn,bnj->bkj", h.conj(), W)) ** 2


def _sinr(h, W, noise):
    """SINRs of eq. (2), float64 ``[batch, K]``; ``noise`` float64 ``[batch]``."""
    g = _gains(h, W)
    sig = np.einsum("bkk->bk", g)
    interf = g.sum(axis=2) - sig
    return sig / (interf + noise[:, None])


def miso_user_rates(h, W, noise):
    """Per-user rates ``log2(1 + gamma_k)`` with ``gamma_k`` of eq. (2), float64 ``[batch, K]``.

    ``h`` complex ``[batch, K, Nt]``, ``W`` complex ``[batch, Nt, K]``, ``noise`` (``sigma^2 =
    N_0``) a positive scalar or ``[batch]``. The power of ``W`` is taken as given (not normalized).
    """
    h, W = _check_hw(h, W)
    noise = _check_scalar_or_batch("noise", noise, h.shape[0])
    return np.log2(1.0 + _sinr(h, W, noise))


def miso_sum_rate(h, W, noise):
    """Sum rate ``R^sum = sum_k log2(1 + gamma_k)`` (Sec. II, below eq. 2; the objective of problem 3),
    float64 ``[batch]`` in bits/s/Hz. Shapes as in :func:`miso_user_rates`."""
    return miso_user_rates(h, W, noise).sum(axis=1)


def mrt_beamformer(h, P):
    """Maximum-ratio transmission with equal power: ``w_k = sqrt(P / K) h_k / ||h_k||``, complex128
    ``[batch, Nt, K]``, ``sum_k ||w_k||^2 = P`` (the paper does not define MRT; equal power per user
    is the common choice and is WMMSE's ``init="mrt"``). Optimal for ``K = 1``."""
    h = _check_h(h)
    b, K, _ = h.shape
    P = _check_scalar_or_batch("P", P, b)
    norms = np.linalg.norm(h, axis=2)  # [b, K]
    if np.any(norms == 0):
        raise ValueError("MRT needs nonzero channels; some ||h_k|| = 0.")
    W = np.swapaxes(h, 1, 2) / norms[:, None, :]
    return W * np.sqrt(P / K)[:, None, None]


def zf_beamformer(h, P):
    """Zero-forcing beamforming of eq. (24): ``W = d H_D (H_D^H H_D)^(-1)``, complex128 ``[batch, Nt, K]``.

    ``H_D = [h_1 ... h_K]`` (``Nt x K``, needs ``K <= Nt`` and full column rank) and the single scalar
    ``d`` is chosen as the paper says, so that ``||W||^2 = P``: ``d^2 = P / tr((H_D^H H_D)^(-1))``.
    Hence ``h_k^H w_j = d delta_kj``: every user gets SINR ``d^2 / sigma^2`` (no per-user power
    allocation, no water-filling).
    """
    h = _check_h(h)
    b, K, Nt = h.shape
    if K > Nt:
        raise ValueError(f"ZF needs K <= Nt. Received: h.shape={h.shape} (K={K}, Nt={Nt})")
    P = _check_scalar_or_batch("P", P, b)
    HD = np.swapaxes(h, 1, 2)  # [b, Nt, K]
    gram = np.einsum("bnk,bnj->bkj", HD.conj(), HD)  # H_D^H H_D, [b, K, K]
    try:
        W0 = HD @ np.linalg.inv(gram)
    except np.linalg.LinAlgError as err:
        raise ValueError("ZF needs H_D of full column rank; H_D^H H_D is singular.") from err
    d = np.sqrt(P / np.sum(np.abs(W0) ** 2, axis=(1, 2)))
    return W0 * d[:, None, None]


def recover_beamformers(h, p, q, P, noise):
    """Beamformers from the power features, eq. (7) in the REFERENCE form, complex128 ``[batch, Nt, K]``.

    ``p``, ``q``: nonnegative ``[batch, K]``, each rescaled to sum to ``P`` (as the reference code
    does; a learned ``p``, ``q`` need not meet ``sum p = sum q = P``), then ``w_k = sqrt(p_k)
    normalize((sigma^2 I + sum_j q_j h_j h_j^H)^(-1) h_k)``. ``P`` and ``noise`` are positive scalars
    or ``[batch]``.
    """
    h = _check_h(h)
    b, K, Nt = h.shape
    P = _check_scalar_or_batch("P", P, b)
    noise = _check_scalar_or_batch("noise", noise, b)
    p = np.asarray(p, np.float64)
    q = np.asarray(q, np.float64)
    for name, x in (("p", p), ("q", q)):
        if x.shape != (b, K):
            raise ValueError(f"`{name}` must be [batch, K] = [{b}, {K}]. Received: {name}.shape={x.shape}")
        if np.any(x < 0) or not np.all(np.isfinite(x)) or np.any(x.sum(axis=1) <= 0):
            raise ValueError(f"`{name}` must be nonnegative and finite with a positive sum per sample.")
    p = p * (P / p.sum(axis=1))[:, None]
    q = q * (P / q.sum(axis=1))[:, None]
    HD = np.swapaxes(h, 1, 2)  # [b, Nt, K]
    M = noise[:, None, None] * np.eye(Nt) + np.einsum("bnj,bj,bmj->bnm", HD, q, HD.conj())
    V = np.linalg.solve(M, HD)  # column k: M^-1 h_k
    V = V / np.linalg.norm(V, axis=1, keepdims=True)
    return V * np.sqrt(p)[:, None, :]


def dual_uplink_powers(h, W, noise):
    """Uplink powers ``q`` (float64 ``[batch, K]``) that give, with receive filters ``w_k / ||w_k||``,
    the downlink SINRs ``gamma_k`` of ``W`` (uplink-downlink duality): the linear system
    ``q_k |h_k^H u_k|^2 / gamma_k - sum_{j != k} q_j |h_j^H u_k|^2 = sigma^2``, whose solution has
    ``sum q = sum_k ||w_k||^2``. Users with ``w_k = 0`` get ``q_k = 0``. Used by :func:`wmmse` only
    when its last update had ``mu = 0``."""
    h, W = _check_hw(h, W)
    b, K, _ = h.shape
    noise = _check_scalar_or_batch("noise", noise, b)
    gamma = _sinr(h, W, noise)
    pw = np.sum(np.abs(W) ** 2, axis=1)
    on = (pw > 0) & (gamma > 0)
    U = W / np.sqrt(np.where(pw > 0, pw, 1.0))[:, None, :]
    g = _gains(h, U)  # g[b, j, k] = |h_j^H u_k|^2
    G = np.swapaxes(g, 1, 2)  # G[b, k, j] = |h_j^H u_k|^2
    diag = np.einsum("bkk->bk", G) / np.where(on, gamma, 1.0)
    M = -G * on[:, :, None] * on[:, None, :]
    idx = np.arange(K)
    M[:, idx, idx] = np.where(on, diag, 1.0)
    rhs = np.where(on, noise[:, None], 0.0)
    return np.clip(np.linalg.solve(M, rhs[..., None])[..., 0], 0.0, None)


def _power_constrained_solve(A, B, P):
    """``X = (A + mu I)^(-1) B`` with ``mu >= 0`` the smallest value giving ``||X||_F^2 <= P``, batched.

    ``A`` Hermitian PSD complex ``[n, d, d]``, ``B`` complex ``[n, d, m]`` (in the range of ``A``),
    ``P`` float64 ``[n]``. ``mu = 0`` (pseudo-inverse: eigenvalues below ``1e-10 lambda_max`` are
    treated as null space, where ``B`` has only round-off) when that solution fits; else ``mu`` is the
    feasible end of a bisection on the eigenvalues of ``A``, ``sum_i phi_i / (lambda_i + mu)^2 = P``
    (``phi_i`` the squared norm of row ``i`` of ``U^H B``), so ``||X||_F^2 <= P`` holds exactly.
    Returns ``(X, mu)``. The transmit update of :func:`wmmse` and of
    :func:`mimokd.classical.multicell_wmmse.multicell_wmmse` (one call per BS).
    """
    lam, Uv = np.linalg.eigh(A)  # ascending, [n, d], [n, d, d]
    lam = np.clip(lam, 0.0, None)
    Z = np.einsum("bmn,bmk->bnk", Uv.conj(), B)  # U^H B, [n, d, m]
    phi = np.sum(np.abs(Z) ** 2, axis=2)  # [n, d]
    # mu = 0: pseudo-inverse (B lies in the range of A; the null-space eigenvalues are round-off).
    valid = lam > 1e-10 * np.maximum(lam[:, -1:], np.finfo(np.float64).tiny)
    inv0 = np.where(valid, 1.0 / np.where(valid, lam, 1.0), 0.0)
    power0 = np.sum(phi * inv0**2, axis=1)
    need = power0 > P
    mu = np.zeros_like(P)
    if np.any(need):
        ph, lm, Pn = phi[need], lam[need], P[need]
        lo = np.zeros_like(Pn)
        hi = np.sqrt(ph.sum(axis=1) / Pn)  # power(hi) <= sum(phi) / hi^2 = P
        for _ in range(_BISECTION_STEPS):
            mid = 0.5 * (lo + hi)
            over = np.sum(ph / (lm + mid[:, None]) ** 2, axis=1) > Pn
            lo = np.where(over, mid, lo)
            hi = np.where(over, hi, mid)
        mu[need] = hi  # the feasible end: ||X||_F^2 <= P exactly
    inv = np.where(need[:, None], 1.0 / (lam + mu[:, None] + (~need)[:, None]), inv0)
    return np.einsum("bnm,bm,bmk->bnk", Uv, inv, Z), mu


def _wmmse_step(h, W, P, noise):
    """One WMMSE update; returns ``(W_new, q, mu)`` with ``q = sigma^2 omega |u|^2 / mu`` (nan where
    ``mu = 0``). ``h [b, K, Nt]``, ``W [b, Nt, K]``, ``P``, ``noise`` float64 ``[b]``."""
    HD = np.swapaxes(h, 1, 2)  # [b, Nt, K]
    G = np.einsum("bkn,bnj->bkj", h.conj(), W)  # h_k^H w_j
    T = np.sum(np.abs(G) ** 2, axis=2) + noise[:, None]  # [b, K]
    sig = np.einsum("bkk->bk", G)
    u = sig / T
    omega = T / (T - np.abs(sig) ** 2)  # 1 / e_k = 1 + gamma_k
    c = omega * np.abs(u) ** 2  # [b, K]
    A = np.einsum("bnj,bj,bmj->bnm", HD, c, HD.conj())
    W_new, mu = _power_constrained_solve(A, HD * (omega * u)[:, None, :], P)
    with np.errstate(divide="ignore", invalid="ignore"):
        q = np.where((mu > 0)[:, None], noise[:, None] * c / mu[:, None], np.nan)
    return W_new, q, mu


def wmmse(h, P, noise, *, max_iter=100, tol=1e-5, init="mrt"):
    """WMMSE sum-rate maximization (Shi et al. 2011) under ``sum_k ||w_k||^2 <= P``, batched.

    Args:
        h: complex ``[batch, K, Nt]``.
        P, noise: positive scalars or ``[batch]`` (linear).
        max_iter: iteration cap (>= 1).
        tol: a sample stops when ``|R_t - R_{t-1}| <= tol |R_{t-1}|`` (relative sum-rate change);
            stopped samples are frozen and the others go on, so the result per sample does not
            depend on the batch it is in.
        init: ``"mrt"`` (:func:`mrt_beamformer`), ``"zf"`` (:func:`zf_beamformer`), or ``"best"``:
            both (ZF only when ``K <= Nt``), keeping per sample the run with the higher sum rate.
            WMMSE finds a local optimum: from MRT at 20 dB (Nt = K = 4) about 6% of channels end
            below ZF; ``"best"`` never does (when ZF exists), at twice the cost. Deterministic.

    With ``K < Nt`` it runs, exactly, in the ``K``-dimensional span of the channels (``H = Q R``, iterate
    on ``Q^H h``, return ``Q W``: every iterate lies in that span), ``O(K^3)`` instead of ``O(Nt^3)`` per
    update; ``Nt = 64, K = 6`` runs ~170x faster, equal to 1e-11.

    Returns:
        ``(W, p, q, iterations)``: ``W`` complex128 ``[batch, Nt, K]``; ``p = ||w_k||^2`` and ``q``
        (see the module docstring: ``q_j = sigma^2 omega_j |u_j|^2 / mu`` of the last update, which
        reproduces ``W``'s directions through eq. 7), float64 ``[batch, K]``; ``iterations`` int
        ``[batch]``, the updates done per sample. The sum rate is non-decreasing over the iterations.
    """
    h = _check_h(h)
    b = h.shape[0]
    P = _check_scalar_or_batch("P", P, b)
    noise = _check_scalar_or_batch("noise", noise, b)
    if int(max_iter) != max_iter or max_iter < 1:
        raise ValueError(f"`max_iter` must be an integer >= 1. Received: max_iter={max_iter}")
    if not tol >= 0:
        raise ValueError(f"`tol` must be >= 0. Received: tol={tol}")
    if init not in INITS:
        raise ValueError(f"`init` must be one of {INITS}. Received: init={init!r}")
    if h.shape[1] < h.shape[2]:
        # Exact subspace reduction (as in multicell_wmmse): every iterate lies in the span of the K channels
        # (MRT and ZF do, and each update keeps it), so run in the coordinates Q^H h of H = Q R, W = Q W_red.
        Q, R = np.linalg.qr(np.swapaxes(h, 1, 2))  # [b, Nt, K], [b, K, K]; Q^H h_k = R[:, :, k]
        W, p, q, iters = wmmse(np.ascontiguousarray(np.swapaxes(R, 1, 2)), P, noise, max_iter=max_iter, tol=tol,
                               init=init)
        return Q @ W, p, q, iters
    if init == "best":
        starts = ("mrt", "zf") if h.shape[1] <= h.shape[2] else ("mrt",)
        runs = [wmmse(h, P, noise, max_iter=max_iter, tol=tol, init=start) for start in starts]
        pick = np.argmax(np.stack([miso_sum_rate(h, run[0], noise) for run in runs]), axis=0)
        return tuple(np.stack([run[i] for run in runs])[pick, np.arange(b)] for i in range(4))
    W = mrt_beamformer(h, P) if init == "mrt" else zf_beamformer(h, P)
    q = np.full((b, h.shape[1]), np.nan)
    rate = np.log2(1.0 + _sinr(h, W, noise)).sum(axis=1)
    iters = np.zeros(b, np.int64)
    active = np.ones(b, bool)
    for _ in range(int(max_iter)):
        idx = np.flatnonzero(active)
        if idx.size == 0:
            break
        W_new, q_new, _ = _wmmse_step(h[idx], W[idx], P[idx], noise[idx])
        r_new = np.log2(1.0 + _sinr(h[idx], W_new, noise[idx])).sum(axis=1)
        W[idx], q[idx] = W_new, q_new
        iters[idx] += 1
        done = np.abs(r_new - rate[idx]) <= tol * np.abs(rate[idx])
        rate[idx] = r_new
        active[idx[done]] = False
    p = np.sum(np.abs(W) ** 2, axis=1)
    bad = np.any(~np.isfinite(q), axis=1)
    if np.any(bad):
        q[bad] = dual_uplink_powers(h[bad], W[bad], noise[bad])
    return W, p, q, iters
