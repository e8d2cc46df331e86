"""WMMSE for the multicell downlink (interfering broadcast channel) of Zhang et al. Sec. VI / VII-C.

The paper's upper bound in the 7-cell network is "the WMMSE solution ... assuming the downlink
channel is available": the algorithm of Shi, Razaviyayn, Luo, He (2011) for the interfering
broadcast channel (IBC), with full downlink CSI of every BS-user link, maximizing the sum over ALL
users of the actual rates of eq. (26) under one power budget per BS.

**Model (eq. 26).** ``num_bs`` BSs with ``Nt`` antennas each serve ``users_per_cell`` single-antenna
users; user ``u`` is served by BS ``j(u) = u // users_per_cell`` with beam ``w_u`` (column ``k = u %
users_per_cell`` of BS ``j(u)``'s ``W_j``). With ``h_{j,u}`` the channel from BS ``j`` to user ``u``,

    ``SINR_u = |h_{j(u),u}^H w_u|^2 / (sum_{v != u} |h_{j(v),u}^H w_v|^2 + sigma^2)``

(the sum runs over the other beams of the own BS and all beams of the other BSs), and the problem is

    ``max sum_u log2(1 + SINR_u)  s.t.  ||W_j||_F^2 = sum_k ||w_{k,j}||^2 <= P  for every BS j``.

**Algorithm (Shi et al. 2011, Table I, IBC with unit weights).** Alternate, for the current ``W``:

- MMSE receivers ``u_u = h_{j(u),u}^H w_u / T_u``, ``T_u = sum_v |h_{j(v),u}^H w_v|^2 + sigma^2``
  (all beams of all BSs, the own one included);
- MSE weights ``omega_u = 1 / e_u = T_u / (T_u - |h_{j(u),u}^H w_u|^2) = 1 + SINR_u`` (computed as
  ``T_u / (interference + sigma^2)``, without the cancellation);
- per BS ``j``, the transmit update for its served users ``k``:

      ``w_k = omega_k u_k (A_j + mu_j I)^(-1) h_{j,k}``,
      ``A_j = sum_{ALL users u'} omega_{u'} |u_{u'}|^2 h_{j,u'} h_{j,u'}^H``

  (``A_j`` contains the users of the other cells: that is what makes BS ``j`` avoid interfering with
  them), ``mu_j >= 0`` the multiplier of BS ``j``'s budget: ``mu_j = 0`` if the (pseudo-inverse)
  solution already has ``||W_j||^2 <= P``, else the root of ``||W_j(mu)||^2 = P``, found by bisection
  on the eigenvalues of ``A_j`` (:func:`mimokd.classical.miso._power_constrained_solve`, the
  transmit update of the single-cell :func:`mimokd.classical.miso.wmmse` with the served users'
  channels as right-hand side; the bisection returns the feasible end, so the budget holds
  exactly). The BSs' updates are independent given ``u`` and ``omega``, so they are done together.

Each step minimizes the weighted-MSE objective over one block exactly, and that objective minimized
over ``u``, ``omega`` is ``-sum rate`` (up to a constant), so the sum rate is non-decreasing over the
iterations; the limit is a stationary (KKT) point of the sum-rate problem, a LOCAL optimum (in the
IBC, unlike the single cell, a BS may end below its budget: ``mu_j = 0`` when more power would
hurt the other cells more than it helps its own users; a beam that is exactly zero stays zero).

**Decisions.**

- *Stopping.* A sample stops when ``|R_t - R_{t-1}| <= tol |R_{t-1}|`` (relative sum-rate change, as
  :func:`mimokd.classical.miso.wmmse`); stopped samples are frozen and the others go on, so the
  result per sample does not depend on the batch it is in. Deterministic (no random draws).
- *Initializations.* ``"slnr"``: the distributed SLNR beamformer of Sec. VI-A (the paper's
  multicell baseline, :func:`mimokd.classical.slnr.multicell_slnr_beamformer` with its defaults:
  50 rounds, objective tolerance ``1e-9``, stopping per sample, so it does not depend on the
  batch). ``"mrt"``: per-BS maximum-ratio transmission at equal power ``P / users_per_cell``
  (:func:`mimokd.classical.miso.mrt_beamformer`).
  ``"best"``: both, keeping per sample the run with the higher final sum rate (ties: ``"slnr"``).
  Since the sum rate never decreases, the result is never below its initialization.
- *Subspace reduction (exact).* Every update ``w_k`` of BS ``j`` lies in ``span{h_{j,u'}}`` (the
  range of ``A_j`` contains ``h_{j,k}`` and the inverse keeps that invariant subspace), and a
  component of ``w`` orthogonal to that span reaches no user. So when ``K_total = num_bs *
  users_per_cell < Nt``, each BS's channels are written once in an orthonormal basis ``Q_j`` of
  their span (QR: ``[h_{j,1} ... h_{j,K_total}] = Q_j R_j``), the iterations run on the
  ``K_total``-dimensional coordinates ``Q_j^H h``, ``Q_j^H w`` (same ``h^H w``, same powers, the
  same problem), and ``W_j = Q_j W_j^red`` at the end. This changes the results only by round-off
  and makes an iteration cost ``O(K_total^3)`` per BS instead of ``O(Nt^3)`` (7 cells, 1 user
  each, ``Nt = 64``: ``7 x 7`` instead of ``64 x 64`` eigendecompositions).
- *Sum rate.* :func:`mimokd.classical.slnr.multicell_user_rates` (eq. 26) ``.sum(-1)``; no new
  function.

Layouts (as :mod:`mimokd.classical.slnr`): ``h`` complex ``[batch, num_bs, K_total, Nt]``,
``h[:, j, u]`` = ``h_{j,u}``, users cell-major (user ``u`` of cell ``i`` is ``i * users_per_cell +
k``); ``W`` complex128 ``[batch, num_bs, Nt, users_per_cell]``, ``W[:, j, :, k]`` serves user ``j *
users_per_cell + k``; ``P`` (per-BS budget) and ``noise`` (``sigma^2``) linear, positive scalars or
``[batch]``. All linear algebra is complex128 / float64.
"""

from __future__ import annotations

import numbers

import numpy as np

from .miso import _check_scalar_or_batch, _power_constrained_solve, mrt_beamformer
from .slnr import _check_multicell_h, multicell_slnr_beamformer

INITS = ("slnr", "mrt", "best")


def _served(x, num_bs, users_per_cell):
    """``x[:, j, j * upc + k, ...]`` -> ``[batch, num_bs, upc, ...]`` (each BS's own users)."""
    b = x.shape[0]
    x = x.reshape(b, num_bs, num_bs, users_per_cell, *x.shape[3:])
    idx = np.arange(num_bs)
    return x[:, idx, idx]


def _rx(h, W):
    """``G[b, u, v] = h_{j(v),u}^H w_v`` (user ``u`` receiving beam ``v``), complex ``[batch, K_total, K_total]``."""
    b, nc, kt, _ = h.shape
    return np.einsum("bjun,bjnk->bujk", h.conj(), W).reshape(b, kt, kt)


def _sinr_parts(h, W, noise):
    """``(G, sig, inn)``: the gains of :func:`_rx`, ``sig_u = G[u, u]`` and interference + noise ``[b, K_total]``."""
    G = _rx(h, W)
    g2 = np.abs(G) ** 2
    sig = np.einsum("buu->bu", G)
    idx = np.arange(G.shape[1])
    g2[:, idx, idx] = 0.0
    return G, sig, g2.sum(axis=2) + noise[:, None]


def _sum_rate(h, W, noise):
    _, sig, inn = _sinr_parts(h, W, noise)
    return np.log2(1.0 + np.abs(sig) ** 2 / inn).sum(axis=1)


def _wmmse_step(h, W, P, noise, users_per_cell):
    """One IBC WMMSE update (module docstring). ``h [b, nc, kt, d]``, ``W [b, nc, d, upc]``, ``P``,
    ``noise`` ``[b]``. Returns ``(W_new, mu [b, nc])``."""
    b, nc, kt, d = h.shape
    G, sig, inn = _sinr_parts(h, W, noise)
    T = inn + np.abs(sig) ** 2
    u = sig / T
    omega = T / inn
    c = omega * np.abs(u) ** 2  # [b, kt]
    A = np.einsum("bjun,bu,bjum->bjnm", h, c, h.conj())  # [b, nc, d, d]
    hs = _served(h, nc, users_per_cell)  # [b, nc, upc, d]
    B = np.swapaxes(hs * (omega * u).reshape(b, nc, users_per_cell, 1), 2, 3)  # [b, nc, d, upc]
    X, mu = _power_constrained_solve(A.reshape(b * nc, d, d), B.reshape(b * nc, d, users_per_cell),
                                     np.repeat(P, nc))
    return X.reshape(b, nc, d, users_per_cell), mu.reshape(b, nc)


def _mrt_start(h, P, users_per_cell):
    """Per-BS MRT at equal power ``P / users_per_cell``, ``[b, nc, Nt, upc]``."""
    hs = _served(h, h.shape[1], users_per_cell)  # [b, nc, upc, Nt]
    return np.stack([mrt_beamformer(hs[:, j], P) for j in range(h.shape[1])], axis=1)


def multicell_wmmse(h, P, noise, users_per_cell, *, max_iter=100, tol=1e-5, init="slnr"):
    """WMMSE (Shi et al. 2011) for the multicell downlink: max sum-rate of eq. (26) s.t. ``||W_j||_F^2 <= P``
    for every BS ``j``, batched. Algorithm and decisions: module docstring.

    Args:
        h: complex ``[batch, num_bs, K_total, Nt]``, ``h[:, j, u]`` = channel from BS ``j`` to user
            ``u`` (cell-major users, ``K_total = num_bs * users_per_cell``).
        P: per-BS power budget, positive scalar or ``[batch]`` (linear).
        noise: ``sigma^2``, positive scalar or ``[batch]`` (linear).
        users_per_cell: users served by each BS.
        max_iter: iteration cap (integer >= 1).
        tol: a sample stops when ``|R_t - R_{t-1}| <= tol |R_{t-1}|``; it is then frozen.
        init: ``"slnr"``, ``"mrt"`` or ``"best"`` (both, keep the higher final sum rate per sample).

    Returns:
        ``(W, iterations)``: ``W`` complex128 ``[batch, num_bs, Nt, users_per_cell]`` with
        ``||W_j||_F^2 <= P`` (``= P`` wherever the last update had ``mu_j > 0``); ``iterations`` int64
        ``[batch]``, the updates done per sample (for ``"best"``, those of the run kept). The sum
        rate (``multicell_user_rates(h, W, noise).sum(-1)``) is non-decreasing over the iterations
        and never below that of the initialization.
    """
    h = _check_multicell_h(h, users_per_cell)
    if not np.all(np.isfinite(h)):
        raise ValueError("`h` must be finite.")
    b, nc, kt, Nt = h.shape
    P = _check_scalar_or_batch("P", P, b)
    noise = _check_scalar_or_batch("noise", noise, b)
    if isinstance(max_iter, bool) or not isinstance(max_iter, (int, np.integer)) or max_iter < 1:
        raise ValueError(f"`max_iter` must be an integer >= 1. Received: max_iter={max_iter!r}")
    if isinstance(tol, bool) or not isinstance(tol, (numbers.Real, np.floating, np.integer)) or not tol >= 0:
        raise ValueError(f"`tol` must be a real number >= 0. Received: tol={tol!r}")
    if not isinstance(init, str) or init not in INITS:
        raise ValueError(f"`init` must be one of {INITS}. Received: init={init!r}")

    if kt < Nt:  # exact subspace reduction (module docstring)
        Q, R = np.linalg.qr(np.swapaxes(h, 2, 3))  # [b, nc, Nt, kt], [b, nc, kt, kt]
        hr = np.ascontiguousarray(np.swapaxes(R, 2, 3))  # hr[:, j, u] = Q_j^H h_{j,u}
    else:
        Q, hr = None, h
    starts = ("slnr", "mrt") if init == "best" else (init,)
    runs = []
    for start in starts:
        if start == "slnr":
            W0 = multicell_slnr_beamformer(hr, P, noise, users_per_cell)
        else:
            W0 = _mrt_start(hr, P, users_per_cell)
        runs.append(_iterate(hr, W0, P, noise, users_per_cell, int(max_iter), tol))
    pick = np.argmax(np.stack([r[2] for r in runs]), axis=0)  # ties: the first ("slnr")
    rows = np.arange(b)
    W = np.stack([r[0] for r in runs])[pick, rows]
    iters = np.stack([r[1] for r in runs])[pick, rows]
    if Q is not None:
        W = Q @ W
    return W, iters


def _iterate(h, W, P, noise, users_per_cell, max_iter, tol):
    """WMMSE updates from ``W`` with per-sample freezing; returns ``(W, iterations, sum rate)``."""
    W = W.copy()
    b = h.shape[0]
    rate = _sum_rate(h, W, noise)
    iters = np.zeros(b, np.int64)
    active = np.ones(b, bool)
    for _ in range(max_iter):
        idx = np.flatnonzero(active)
        if idx.size == 0:
            break
        W_new, _ = _wmmse_step(h[idx], W[idx], P[idx], noise[idx], users_per_cell)
        r_new = _sum_rate(h[idx], W_new, noise[idx])
        W[idx] = W_new
        iters[idx] += 1
        done = np.abs(r_new - rate[idx]) <= tol * np.abs(rate[idx])
        rate[idx] = r_new
        active[idx[done]] = False
    return W, iters, rate
