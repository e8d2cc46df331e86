"""Multiuser MISO downlink of Zhang et al. (mimokd.classical.miso): sum rate, ZF / MRT, WMMSE, eq. (7)."""

import numpy as np
import pytest

from mimokd.rng import complex_normal
from mimokd.classical.miso import (
    dual_uplink_powers,
    miso_sum_rate,
    miso_user_rates,
    mrt_beamformer,
    recover_beamformers,
    wmmse,
    zf_beamformer,
)


def _cn(rng, shape):
    return complex_normal(rng, shape)


def _loop_sum_rate(h, W, noise):
    out = []
    for hb, Wb in zip(h, W):
        K = hb.shape[0]
        r = 0.0
        for k in range(K):
            s = abs(np.vdot(hb[k], Wb[:, k])) ** 2
            i = sum(abs(np.vdot(hb[k], Wb[:, j])) ** 2 for j in range(K) if j != k)
            r += np.log2(1.0 + s / (i + noise))
        out.append(r)
    return np.array(out)


def test_sum_rate_matches_loop():
    rng = np.random.default_rng(0)
    h, W = _cn(rng, (6, 3, 4)), _cn(rng, (6, 4, 3))
    got = miso_sum_rate(h, W, 0.5)
    assert got.dtype == np.float64 and got.shape == (6,)
    np.testing.assert_allclose(got, _loop_sum_rate(h, W, 0.5), rtol=1e-12)
    np.testing.assert_allclose(miso_user_rates(h, W, 0.5).sum(axis=1), got)


def test_shape_errors():
    rng = np.random.default_rng(0)
    h = _cn(rng, (2, 3, 4))
    with pytest.raises(ValueError, match="W"):
        miso_sum_rate(h, _cn(rng, (2, 3, 4)), 1.0)
    with pytest.raises(ValueError, match="K <= Nt"):
        zf_beamformer(_cn(rng, (2, 5, 4)), 1.0)
    with pytest.raises(ValueError, match="noise"):
        miso_sum_rate(h, _cn(rng, (2, 4, 3)), -1.0)
    with pytest.raises(ValueError, match="init"):
        wmmse(h, 1.0, 1.0, init="random")
    with pytest.raises(ValueError, match="q"):
        recover_beamformers(h, np.ones((2, 3)), np.ones((2, 2)), 1.0, 1.0)


def test_single_user_closed_form():
    rng = np.random.default_rng(1)
    h, P, noise = _cn(rng, (8, 1, 4)), 10.0, 0.5
    closed = np.log2(1.0 + P * np.sum(np.abs(h[:, 0]) ** 2, axis=1) / noise)
    np.testing.assert_allclose(miso_sum_rate(h, mrt_beamformer(h, P), noise), closed, rtol=1e-12)
    W, p, q, _ = wmmse(h, P, noise)
    np.testing.assert_allclose(miso_sum_rate(h, W, noise), closed, rtol=1e-9)
    np.testing.assert_allclose(p[:, 0], P, rtol=1e-9)


def test_zf_removes_interference_and_meets_power():
    rng = np.random.default_rng(2)
    h, P, noise = _cn(rng, (10, 3, 4)), 100.0, 1.0
    W = zf_beamformer(h, P)
    G = np.einsum("bkn,bnj->bkj", h.conj(), W)
    off = G * (1 - np.eye(3))
    assert np.abs(off).max() < 1e-10 * np.abs(G).max()
    np.testing.assert_allclose(np.sum(np.abs(W) ** 2, axis=(1, 2)), P, rtol=1e-12)
    # eq. (24): one scalar d for all users, SINR_k = d^2 / sigma^2 = P / (sigma^2 tr((H^H H)^-1)).
    HD = np.swapaxes(h, 1, 2)
    tr = np.real(np.trace(np.linalg.inv(np.swapaxes(HD.conj(), 1, 2) @ HD), axis1=1, axis2=2))
    np.testing.assert_allclose(miso_sum_rate(h, W, noise), 3 * np.log2(1 + P / (noise * tr)), rtol=1e-10)


@pytest.mark.parametrize("nt,k,p_db", [(4, 4, 10.0), (4, 2, 20.0), (6, 3, 0.0)])
def test_wmmse_beats_zf_mrt_and_meets_power(nt, k, p_db):
    rng = np.random.default_rng(3)
    h, P, noise = _cn(rng, (64, k, nt)), 10 ** (p_db / 10), 1.0
    W, p, q, it = wmmse(h, P, noise)
    r = miso_sum_rate(h, W, noise)
    assert np.all(r >= miso_sum_rate(h, zf_beamformer(h, P), noise) - 1e-6)
    assert np.all(r >= miso_sum_rate(h, mrt_beamformer(h, P), noise) - 1e-9)
    for Wb in (W, zf_beamformer(h, P), mrt_beamformer(h, P)):
        assert np.all(np.sum(np.abs(Wb) ** 2, axis=(1, 2)) <= P * (1 + 1e-12))
    np.testing.assert_allclose(p.sum(axis=1), P, rtol=1e-9)  # the constraint is active at the optimum
    assert np.all(it >= 1) and np.all(it <= 100)


def test_wmmse_zf_init_never_below_zf_at_high_snr():
    rng = np.random.default_rng(4)
    h, P = _cn(rng, (32, 4, 4)), 100.0
    W, *_ = wmmse(h, P, 1.0, init="zf")
    assert np.all(miso_sum_rate(h, W, 1.0) >= miso_sum_rate(h, zf_beamformer(h, P), 1.0) - 1e-9)


def test_wmmse_best_start_is_never_below_zf_mrt_or_either_single_start():
    rng = np.random.default_rng(4)
    h, P = _cn(rng, (64, 4, 4)), 100.0
    W, p, q, _ = wmmse(h, P, 1.0, init="best")
    best = miso_sum_rate(h, W, 1.0)
    for other in (zf_beamformer(h, P), mrt_beamformer(h, P), wmmse(h, P, 1.0, init="mrt")[0],
                  wmmse(h, P, 1.0, init="zf")[0]):
        assert np.all(best >= miso_sum_rate(h, other, 1.0) - 1e-9)
    np.testing.assert_allclose(p, np.sum(np.abs(W) ** 2, axis=1))  # p, q come from the kept run
    assert q.shape == p.shape and np.all(np.isfinite(q))


def test_wmmse_sum_rate_non_decreasing():
    rng = np.random.default_rng(5)
    h, P = _cn(rng, (16, 4, 4)), 100.0
    rates = [miso_sum_rate(h, mrt_beamformer(h, P), 1.0)]
    for t in range(1, 26):  # deterministic, so max_iter = t gives the t-th iterate
        W, _, _, it = wmmse(h, P, 1.0, max_iter=t, tol=0.0)
        rates.append(miso_sum_rate(h, W, 1.0))
    rates = np.array(rates)
    assert np.all(np.diff(rates, axis=0) >= -1e-9)
    assert np.all(rates[-1] > rates[0])


def test_wmmse_batch_invariant():
    rng = np.random.default_rng(6)
    h = _cn(rng, (8, 3, 4))
    W, p, q, it = wmmse(h, 10.0, 1.0)
    W1, p1, q1, it1 = wmmse(h[2:3], 10.0, 1.0)
    np.testing.assert_allclose(W1[0], W[2], atol=1e-12)
    assert it1[0] == it[2]


def test_wmmse_q_gives_eq7_directions_and_recovery():
    rng = np.random.default_rng(7)
    h, P, noise = _cn(rng, (32, 3, 4)), 10.0, 1.0
    W, p, q, _ = wmmse(h, P, noise, max_iter=500, tol=1e-10)
    # q from the last update reproduces W's directions exactly through eq. (7), before any rescaling.
    HD = np.swapaxes(h, 1, 2)
    M = noise * np.eye(4) + np.einsum("bnj,bj,bmj->bnm", HD, q, HD.conj())
    V = np.linalg.solve(M, HD)
    cos = np.abs(np.sum(V.conj() * W, axis=1)) / (np.linalg.norm(V, axis=1) * np.linalg.norm(W, axis=1))
    np.testing.assert_allclose(cos, 1.0, atol=1e-9)
    # Derived: sum q = P at convergence; the recovery (rescaled p, q) reproduces WMMSE's sum rate.
    np.testing.assert_allclose(q.sum(axis=1), P, rtol=1e-3)
    r = miso_sum_rate(h, W, noise)
    np.testing.assert_allclose(miso_sum_rate(h, recover_beamformers(h, p, q, P, noise), noise), r, rtol=1e-5)
    # At the default tolerance, still close.
    W, p, q, _ = wmmse(h, P, noise)
    r = miso_sum_rate(h, W, noise)
    np.testing.assert_allclose(miso_sum_rate(h, recover_beamformers(h, p, q, P, noise), noise), r, rtol=1e-3)


def test_recover_rescales_and_is_power_exact():
    rng = np.random.default_rng(8)
    h = _cn(rng, (4, 3, 4))
    p, q = rng.uniform(0.1, 1.0, (4, 3)), rng.uniform(0.1, 1.0, (4, 3))
    W = recover_beamformers(h, p, q, 5.0, 1.0)
    np.testing.assert_allclose(np.sum(np.abs(W) ** 2, axis=1), 5.0 * p / p.sum(axis=1, keepdims=True), rtol=1e-12)
    np.testing.assert_allclose(W, recover_beamformers(h, 3 * p, 7 * q, 5.0, 1.0), atol=1e-12)


def test_wmmse_near_brute_force_2x2():
    """Grid: u_k = [cos t, sin t e^{i f}] (global phase irrelevant), t in linspace(0, pi/2, 33),
    f in 32 points of [0, 2 pi); power split p_1 = P s, p_2 = P (1 - s), s in linspace(0, 1, 51)
    (the power constraint is active at a sum-rate optimum). 1056^2 direction pairs x 51 splits."""
    rng = np.random.default_rng(9)
    h, P, noise = _cn(rng, (3, 2, 2)), 10.0, 1.0
    t = np.linspace(0, np.pi / 2, 33)
    f = np.linspace(0, 2 * np.pi, 32, endpoint=False)
    U = np.stack([np.repeat(np.cos(t), 32), np.outer(np.sin(t), np.exp(1j * f)).ravel()])  # [2, D]
    W, *_ = wmmse(h, P, noise, max_iter=300, tol=1e-9)
    r_w = miso_sum_rate(h, W, noise)
    for b in range(3):
        g = np.abs(h[b].conj() @ U) ** 2  # g[k, d] = |h_k^H u_d|^2
        best = 0.0
        for s in np.linspace(0, 1, 51):
            p1, p2 = P * s, P * (1 - s)
            r = np.log2(1 + p1 * g[0][:, None] / (p2 * g[0][None, :] + noise))
            r += np.log2(1 + p2 * g[1][None, :] / (p1 * g[1][:, None] + noise))
            best = max(best, r.max())
        assert r_w[b] >= best - 1e-3  # WMMSE is no worse than the grid's best
        assert r_w[b] <= best + 0.05  # and the grid is fine enough to come close


def test_dual_uplink_powers_duality():
    """Uplink powers q with receive filters u_k = w_k / ||w_k|| reach the downlink SINRs, sum q = sum p."""
    rng = np.random.default_rng(10)
    h, W, noise = _cn(rng, (5, 3, 4)), _cn(rng, (5, 4, 3)), 0.7
    q = dual_uplink_powers(h, W, noise)
    np.testing.assert_allclose(q.sum(axis=1), np.sum(np.abs(W) ** 2, axis=(1, 2)), rtol=1e-10)
    U = W / np.linalg.norm(W, axis=1, keepdims=True)
    g = np.abs(np.einsum("bjn,bnk->bjk", h.conj(), U)) ** 2  # |h_j^H u_k|^2
    sig = q * np.einsum("bkk->bk", g)
    ul = sig / (np.einsum("bj,bjk->bk", q, g) - sig + noise)
    dl = 2 ** miso_user_rates(h, W, noise) - 1
    np.testing.assert_allclose(ul, dl, rtol=1e-10)


def test_wmmse_subspace_reduction_is_exact():
    """With K < Nt, wmmse iterates in the K-dimensional span of the channels (QR); the result equals
    the same updates done in full dimension (here: _wmmse_step from MRT, written out)."""
    from mimokd.classical.miso import _wmmse_step, mrt_beamformer

    rng = np.random.default_rng(7)
    h = (rng.standard_normal((20, 3, 16)) + 1j * rng.standard_normal((20, 3, 16))) / np.sqrt(2)
    P, noise = np.full(20, 10.0), np.ones(20)
    W = mrt_beamformer(h, P)
    for _ in range(6):
        W, _, _ = _wmmse_step(h, W, P, noise)
    W_red, p, _, iters = wmmse(h, 10.0, 1.0, max_iter=6, tol=0.0, init="mrt")
    assert np.all(iters == 6)
    np.testing.assert_allclose(W_red, W, atol=1e-9 * np.abs(W).max())
    np.testing.assert_allclose(p, np.sum(np.abs(W) ** 2, axis=1), rtol=1e-9)
