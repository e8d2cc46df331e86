"""SLNR beamforming with alternating direction / power optimization of Zhang et al. (Sec. VI-A).

**Model.** The BS of cell ``i`` (``Nt`` antennas) serves its ``K`` users with ``w_k = sqrt(p_k) u_k``,
``||u_k|| = 1``, ``sum_k p_k <= P``. The SLNR of served user ``k`` (eq. 27) is

    ``gamma_k = p_k |h_k^H u_k|^2 / (p_k L_k + N_0)``,  ``L_k = sum_{m != k} |g_m^H u_k|^2``,

where ``g_m`` runs over EVERY user of every cell as seen from this BS (the other served users
``h_j``, ``j != k``, and the ``M`` users of the other cells, passed here as ``leak``). The paper
prints ``p_{k_i}`` in the leakage of eq. (30)/(31) too, as above: the leakage is caused by
``w_k``, hence scales with ``p_k``. ``N_0`` is ``noise`` here.

**Objective (eq. 28-31).** The per-cell problem (29) maximizes ``sum_k log2(1 + gamma_k)``; the
paper replaces it by its high-SNR approximation ``sum_k log2(gamma_k)`` (eq. 28, 30), i.e. it
minimizes ``prod_k (N_0 / (a_k p_k) + L_k / a_k)``, ``a_k = |h_k^H u_k|^2``, s.t. ``sum_k p_k <= P``
(eq. 31). This module solves exactly that (sum-log-SLNR, NOT max-min SINR and not the exact
``log(1 + .)`` rate); :func:`slnr_objective` evaluates it in bits.

**Directions (eq. 32).** For fixed ``p``,

    ``u_k = (I + (p_k / N_0) sum_{all m} g_m g_m^H)^(-1) h_k / ||...||``

(the sum includes ``k`` itself; by Sherman-Morrison that changes only the length, so this is the
principal generalized eigenvector of ``(h_k h_k^H, (N_0 / p_k) I + sum_{m != k} g_m g_m^H)``, the
exact maximizer of ``gamma_k`` over unit ``u_k``).

**Powers (eq. 31): solver decision.** For fixed directions the objective is a product of
posynomials, a GP (the paper solves it as one, its [37]). We solve it in closed form instead of
calling a GP solver, because it is separable: in ``p`` the objective ``sum_k log(a_k p_k) -
log(L_k p_k + N_0)`` is strictly concave (second derivative ``-1/p^2 + L^2 / (L p + N_0)^2 < 0``)
and strictly increasing in every ``p_k``, the constraint is one linear budget, so the budget is
tight and the KKT conditions ``N_0 / (p_k (L_k p_k + N_0)) = lambda`` are necessary and sufficient.
They give ``p_k(c) = 2 c / (N_0 + sqrt(N_0^2 + 4 L_k c))`` with ``c = N_0 / lambda``, increasing in
``c``; ``c`` is found by bisection (in ``log c``) on ``sum_k p_k(c) = P``. This is the same optimum
a GP solver (e.g. cvxpy ``problem.solve(gp=True)``) would return, to machine precision, vectorized
over the batch, with no extra dependency (cvxpy is not installed here) and no solver tolerances;
the tests check it against ``scipy.optimize.minimize`` on the log-transformed GP (``p = e^x``)
and a brute-force grid.

**Alternating optimization.** Start from equal power ``P / K``, then repeat: directions by eq. (32)
for the current ``p``, powers by eq. (31) for the new directions. Each step maximizes the objective
over its block exactly, so the objective history is non-decreasing (up to rounding) and converges.
Each batch entry stops on its own (its objective change at most ``tol * max(1, |objective|)``) and
is then frozen, so an entry's result does not depend on the rest of its batch.

Layouts (as :mod:`mimokd.classical.miso`): served channels ``h`` complex ``[batch, K, Nt]``; other
cells' users' channels from this BS ``leak`` complex ``[batch, M, Nt]`` (optional, single cell: none);
directions ``U`` and beamformers ``W`` complex ``[batch, Nt, K]``; powers float64 ``[batch, K]``;
``P``, ``noise`` linear, a positive scalar or ``[batch]``. Multicell (:func:`multicell_slnr_beamformer`):
``h`` ``[batch, num_bs, num_bs * users_per_cell, Nt]`` (``h[:, i, u]`` is BS ``i`` -> user ``u``,
users cell-major as :func:`mimokd.channels.uplink_downlink.drop_users` flattened), served users of
BS ``i`` are ``u = i * users_per_cell + 0..users_per_cell-1``. Everything is complex128 / float64.
"""

from __future__ import annotations

import numpy as np

from .checks import check_channel, check_power
from .miso import _check_h, _check_scalar_or_batch

_BISECTION_STEPS = 200


def _check_leak(leak, h):
    b, _, Nt = h.shape
    if leak is None:
        return np.zeros((b, 0, Nt), np.complex128)
    leak = np.asarray(leak)
    if leak.ndim != 3 or leak.shape[0] != b or leak.shape[2] != Nt or not np.issubdtype(leak.dtype, np.number):
        raise ValueError(f"`leak` must be complex [batch, M, Nt] = [{b}, M, {Nt}]. Received: leak.shape={leak.shape}")
    return check_channel("leak", leak).astype(np.complex128)


def _check_powers(name, p, h):
    p = np.asarray(p, np.float64)
    b, K, _ = h.shape
    if p.ndim == 0:
        p = np.full((b, K), float(p))
    if p.shape != (b, K):
        raise ValueError(f"`{name}` must be a scalar or [batch, K] = [{b}, {K}]. Received: {name}.shape={p.shape}")
    return check_power(name, p, positive=True)


def _check_directions(U, h):
    U = np.asarray(U)
    b, K, Nt = h.shape
    if U.shape != (b, Nt, K):
        raise ValueError(f"`directions` must be complex [batch, Nt, K] = [{b}, {Nt}, {K}]. Received: {U.shape}")
    return U.astype(np.complex128)


def _signal_and_leakage(h, leak, U):
    """``a_k = |h_k^H u_k|^2`` and ``L_k = sum_{m != k} |g_m^H u_k|^2`` (unit-normalized ``u_k``), ``[b, K]``."""
    U = U / np.linalg.norm(U, axis=1, keepdims=True)
    g_served = np.abs(np.einsum("bjn,bnk->bjk", h.conj(), U)) ** 2  # [b, j, k]: |h_j^H u_k|^2
    a = np.einsum("bkk->bk", g_served)
    L = g_served.sum(axis=1) - a + (np.abs(np.einsum("bmn,bnk->bmk", leak.conj(), U)) ** 2).sum(axis=1)
    return a, L


def slnr_directions(h, powers, noise, *, leak=None):
    """Max-SLNR unit directions of eq. (32), complex128 ``[batch, Nt, K]``.

    ``u_k ∝ (I + (p_k / N_0) sum_{all m} g_m g_m^H)^(-1) h_k`` with ``g_m`` the served channels
    ``h`` ``[batch, K, Nt]`` and the other cells' users ``leak`` ``[batch, M, Nt]``; ``powers``
    ``[batch, K]`` (or a scalar), ``noise`` ``N_0`` a scalar or ``[batch]``.
    """
    h = _check_h(h)
    leak = _check_leak(leak, h)
    p = _check_powers("powers", powers, h)
    b, K, Nt = h.shape
    noise = _check_scalar_or_batch("noise", noise, b)
    g = np.concatenate([h, leak], axis=1)
    R = np.einsum("bmn,bmo->bno", g, g.conj())  # sum_m g_m g_m^H, [b, Nt, Nt]
    A = np.eye(Nt)[None, None] + (p / noise[:, None])[:, :, None, None] * R[:, None]  # [b, K, Nt, Nt]
    u = np.linalg.solve(A, h[..., None])[..., 0]  # [b, K, Nt]
    u = u / np.linalg.norm(u, axis=2, keepdims=True)
    return np.ascontiguousarray(u.transpose(0, 2, 1))


def slnr_values(h, directions, powers, noise, *, leak=None):
    """SLNRs of eq. (27) for ``w_k = sqrt(p_k) u_k`` (``u_k`` normalized here), float64 ``[batch, K]``."""
    h = _check_h(h)
    leak = _check_leak(leak, h)
    U = _check_directions(directions, h)
    p = _check_powers("powers", powers, h)
    noise = _check_scalar_or_batch("noise", noise, h.shape[0])
    a, L = _signal_and_leakage(h, leak, U)
    return p * a / (p * L + noise[:, None])


def slnr_objective(h, directions, powers, noise, *, leak=None):
    """The paper's per-cell objective ``sum_k log2(gamma_k)`` (eq. 30, high-SNR form of eq. 28), ``[batch]``."""
    return np.log2(slnr_values(h, directions, powers, noise, leak=leak)).sum(axis=1)


def _kkt_powers(a, L, P, noise):
    """Exact maximizer of ``sum_k log(a_k p_k / (L_k p_k + N_0))`` s.t. ``sum_k p_k = P`` (see module doc)."""
    del a  # the a_k only shift the objective by constants
    N0 = noise[:, None]
    K = L.shape[1]

    def p_of(log_c):
        c = np.exp(log_c)[:, None]
        return 2.0 * c / (N0 + np.sqrt(N0 * N0 + 4.0 * L * c))

    # p_k(c) = P  <=>  c = P (L_k P + N_0): every p_k >= P at c_hi, every p_k <= P / K at c_lo.
    lo = np.log(np.min((P / K)[:, None] * (L * (P / K)[:, None] + N0), axis=1))
    hi = np.log(np.max(P[:, None] * (L * P[:, None] + N0), axis=1))
    for _ in range(_BISECTION_STEPS):
        mid = 0.5 * (lo + hi)
        over = p_of(mid).sum(axis=1) > P
        hi = np.where(over, mid, hi)
        lo = np.where(over, lo, mid)
        if np.all(hi - lo < 1e-15 * np.maximum(1.0, np.abs(hi))):
            break
    p = p_of(0.5 * (lo + hi))
    return p * (P / p.sum(axis=1))[:, None]  # remove the last bisection residue: sum_k p_k = P exactly


def gp_power_allocation(h, directions, P, noise, *, leak=None):
    """Powers solving eq. (31) for fixed directions: max ``sum_k log2(gamma_k)`` s.t. ``sum_k p_k <= P``.

    Exact (KKT + bisection, see the module docstring for why no GP solver is needed); the budget is
    always tight. Returns float64 ``[batch, K]``, positive, ``sum_k p_k = P``.
    """
    h = _check_h(h)
    leak = _check_leak(leak, h)
    U = _check_directions(directions, h)
    b = h.shape[0]
    P = _check_scalar_or_batch("P", P, b)
    noise = _check_scalar_or_batch("noise", noise, b)
    a, L = _signal_and_leakage(h, leak, U)
    return _kkt_powers(a, L, P, noise)


def slnr_beamformer(h, P, noise, *, leak=None, iterations=50, tol=1e-9, return_info=False):
    """Alternating optimization of Sec. VI-A (eq. 32 <-> eq. 31) from equal power, batched.

    A batch entry stops after ``iterations`` rounds or as soon as its objective
    (:func:`slnr_objective`) changed by at most ``tol * max(1, |objective|)`` in its last round; a
    stopped entry is frozen while the others go on, so the result per entry does not depend on the
    batch it is in (up to round-off). Returns ``W`` complex128 ``[batch, Nt, K]`` with
    ``sum_k ||w_k||^2 = P``; with ``return_info=True`` returns ``(W, p, history)``, ``p``
    ``[batch, K]`` the final powers and ``history`` float64 ``[rounds + 1, batch]`` the objective at
    equal power with eq. (32) directions, then after each round, ``rounds`` the most rounds any entry
    did; a frozen entry repeats its final objective in the rows after it stopped.
    """
    h = _check_h(h)
    leak = _check_leak(leak, h)
    b, K, _ = h.shape
    P = _check_scalar_or_batch("P", P, b)
    noise = _check_scalar_or_batch("noise", noise, b)
    if isinstance(iterations, bool) or not isinstance(iterations, (int, np.integer)) or iterations < 1:
        raise ValueError(f"`iterations` must be a positive integer. Received: iterations={iterations!r}")
    p = np.broadcast_to((P / K)[:, None], (b, K)).copy()
    U = slnr_directions(h, p, noise, leak=leak)
    obj = slnr_objective(h, U, p, noise, leak=leak)
    history = [obj.copy()]
    active = np.ones(b, bool)
    for _ in range(iterations):
        idx = np.flatnonzero(active)
        if idx.size == 0:
            break
        hi, li, Pi, ni = h[idx], leak[idx], P[idx], noise[idx]
        p[idx] = gp_power_allocation(hi, U[idx], Pi, ni, leak=li)
        U[idx] = slnr_directions(hi, p[idx], ni, leak=li)
        o_new = slnr_objective(hi, U[idx], p[idx], ni, leak=li)
        done = np.abs(o_new - obj[idx]) <= tol * np.maximum(1.0, np.abs(o_new))
        obj[idx] = o_new
        active[idx[done]] = False
        history.append(obj.copy())
    W = U * np.sqrt(p)[:, None, :]
    if return_info:
        return W, p, np.stack(history)
    return W


def _check_multicell_h(h, users_per_cell):
    """``h`` ``[batch, num_bs, K_total, Nt]`` with ``K_total = num_bs * users_per_cell`` -> complex128."""
    h = np.asarray(h)
    if h.ndim != 4 or not np.issubdtype(h.dtype, np.number):
        raise ValueError(f"`h` must be complex [batch, num_bs, K_total, Nt]. Received: h.shape={h.shape}")
    _, nc, kt, _ = h.shape
    if isinstance(users_per_cell, bool) or not isinstance(users_per_cell, (int, np.integer)) \
            or users_per_cell < 1 or kt != nc * users_per_cell:
        raise ValueError(f"`users_per_cell` must be a positive int with num_bs * users_per_cell = K_total = {kt}. "
                         f"Received: users_per_cell={users_per_cell!r}, num_bs={nc}")
    return check_channel("h", h).astype(np.complex128)


def multicell_slnr_beamformer(h, P, noise, users_per_cell, **kwargs):
    """Distributed per-cell SLNR beamforming (Sec. VI-A): each BS runs :func:`slnr_beamformer` on
    its own users with every other cell's users as leakage victims (no inter-BS exchange).

    ``h`` complex ``[batch, num_bs, num_bs * users_per_cell, Nt]`` (layout in the module docstring),
    ``P`` the per-BS budget and ``noise`` scalars or ``[batch]``. Returns complex128
    ``[batch, num_bs, Nt, users_per_cell]``; ``W[:, i, :, k]`` serves user ``i * users_per_cell + k``.
    ``kwargs`` go to :func:`slnr_beamformer` (``return_info`` not allowed); its per-entry stopping
    makes the result per batch entry independent of the batch.
    """
    if kwargs.get("return_info"):
        raise ValueError("`return_info` is not supported by multicell_slnr_beamformer.")
    h = _check_multicell_h(h, users_per_cell)
    kt = h.shape[2]
    out = []
    for i in range(h.shape[1]):
        mine = np.arange(i * users_per_cell, (i + 1) * users_per_cell)
        others = np.setdiff1d(np.arange(kt), mine)
        out.append(slnr_beamformer(h[:, i, mine], P, noise, leak=h[:, i, others], **kwargs))
    return np.stack(out, axis=1)


def multicell_user_rates(h, W, noise):
    """Actual rates ``log2(1 + SINR)`` of eq. (26) (how the paper scores SLNR), float64 ``[batch, K_total]``.

    ``h`` ``[batch, num_bs, K_total, Nt]``, ``W`` ``[batch, num_bs, Nt, users_per_cell]`` (as
    returned by :func:`multicell_slnr_beamformer`), ``noise`` a scalar or ``[batch]``.
    """
    h = np.asarray(h, np.complex128)
    W = np.asarray(W, np.complex128)
    b, nc, kt, Nt = h.shape
    if W.ndim != 4 or W.shape[:3] != (b, nc, Nt) or W.shape[3] * nc != kt:
        raise ValueError(f"`W` must be [batch, num_bs, Nt, K_total / num_bs] for h {h.shape}. Received: {W.shape}")
    noise = _check_scalar_or_batch("noise", noise, b)
    # rx[b, u, j, k] = |h_{u, j}^H w_{k_j}|^2: power at user u from BS j's beam k.
    rx = np.abs(np.einsum("bjun,bjnk->bujk", h.conj(), W)) ** 2
    rx = rx.reshape(b, kt, kt)  # column index = j * users_per_cell + k = the user that beam serves
    sig = np.einsum("buu->bu", rx)
    return np.log2(1.0 + sig / (rx.sum(axis=2) - sig + noise[:, None]))
