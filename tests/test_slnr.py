"""SLNR beamforming of Zhang et al. Sec. VI-A (mimokd.classical.slnr): eq. (32), eq. (31), alternation."""

import numpy as np
import pytest
import scipy.linalg
import scipy.optimize

from mimokd.rng import complex_normal
from mimokd.classical.miso import miso_sum_rate, mrt_beamformer
from mimokd.classical.slnr import (
    gp_power_allocation,
    multicell_slnr_beamformer,
    multicell_user_rates,
    slnr_beamformer,
    slnr_directions,
    slnr_objective,
    slnr_values,
)


def _cn(rng, shape):
    return complex_normal(rng, shape)


def _setup(seed=0, batch=4, K=3, Nt=4, M=0):
    rng = np.random.default_rng(seed)
    h = _cn(rng, (batch, K, Nt))
    leak = _cn(rng, (batch, M, Nt)) if M else None
    p = rng.uniform(0.2, 2.0, (batch, K))
    return rng, h, leak, p


@pytest.mark.parametrize("M", [0, 2])
def test_directions_maximize_slnr(M):
    rng, h, leak, p = _setup(M=M)
    noise = 0.3
    U = slnr_directions(h, p, noise, leak=leak)
    assert U.shape == (4, 4, 3)
    np.testing.assert_allclose(np.linalg.norm(U, axis=1), 1.0, atol=1e-12)
    best = slnr_values(h, U, p, noise, leak=leak)
    for _ in range(200):  # random unit directions never beat eq. (32)
        R = _cn(rng, U.shape)
        assert np.all(slnr_values(h, R, p, noise, leak=leak) <= best * (1 + 1e-12))
    g_all = h if leak is None else np.concatenate([h, leak], axis=1)
    for b in range(h.shape[0]):
        for k in range(h.shape[1]):
            others = np.delete(g_all[b], k, axis=0)
            A = np.outer(h[b, k], h[b, k].conj())
            B = noise / p[b, k] * np.eye(4) + others.T @ others.conj()
            vals, vecs = scipy.linalg.eigh(A, B)
            np.testing.assert_allclose(best[b, k], vals[-1], rtol=1e-9)
            v = vecs[:, -1] / np.linalg.norm(vecs[:, -1])
            np.testing.assert_allclose(abs(np.vdot(v, U[b, :, k])), 1.0, atol=1e-9)


def test_gp_power_budget_and_beats_equal_power():
    rng, h, leak, _ = _setup(seed=1, batch=6, M=2)
    P, noise = 2.0, 0.1
    U = _cn(rng, (6, 4, 3))
    p = gp_power_allocation(h, U, P, noise, leak=leak)
    assert p.shape == (6, 3) and np.all(p > 0)
    np.testing.assert_allclose(p.sum(axis=1), P, rtol=1e-12)
    eq = np.full_like(p, P / 3)
    assert np.all(slnr_objective(h, U, p, noise, leak=leak) >= slnr_objective(h, U, eq, noise, leak=leak) - 1e-12)
    # Same optimum as scipy on the log-transformed GP (p = e^x; convex objective, convex budget).
    for b in range(6):
        def f(x, b=b):
            return -slnr_objective(h[b:b + 1], U[b:b + 1], np.exp(x)[None], noise, leak=leak[b:b + 1])[0]
        cons = {"type": "ineq", "fun": lambda x: np.log(P) - np.log(np.exp(x).sum())}
        res = scipy.optimize.minimize(f, np.log(np.full(3, P / 3)), constraints=[cons], method="SLSQP",
                                      options={"ftol": 1e-12, "maxiter": 500})
        assert -res.fun <= -f(np.log(p[b])) + 1e-7
        np.testing.assert_allclose(np.exp(res.x), p[b], rtol=1e-3)


def test_gp_matches_brute_force_grid_k2():
    rng, h, _, _ = _setup(seed=2, batch=3, K=2)
    P, noise = 1.0, 0.05
    U = _cn(rng, (3, 4, 2))
    p = gp_power_allocation(h, U, P, noise)
    grid = np.linspace(1e-4, P - 1e-4, 20001)
    for b in range(3):
        pg = np.stack([grid, P - grid], axis=1)
        obj = slnr_objective(np.repeat(h[b:b + 1], len(grid), 0), np.repeat(U[b:b + 1], len(grid), 0), pg, noise)
        best = np.argmax(obj)
        assert slnr_objective(h[b:b + 1], U[b:b + 1], p[b:b + 1], noise)[0] >= obj[best] - 1e-9
        assert abs(p[b, 0] - grid[best]) <= 2 * (grid[1] - grid[0])


@pytest.mark.parametrize("M", [0, 3])
def test_alternating_objective_non_decreasing(M):
    _, h, leak, _ = _setup(seed=3, batch=8, M=M)
    P, noise = 1.0, 0.1
    W, p, hist = slnr_beamformer(h, P, noise, leak=leak, iterations=30, tol=0.0, return_info=True)
    assert W.shape == (8, 4, 3) and hist.shape[1] == 8
    assert np.all(np.diff(hist, axis=0) >= -1e-9 * np.maximum(1.0, np.abs(hist[1:])))
    assert np.all(hist[-1] > hist[0] - 1e-12)
    np.testing.assert_allclose((np.abs(W) ** 2).sum(axis=(1, 2)), P, rtol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(W, axis=1) ** 2, p, rtol=1e-12)
    # Converged: one more round changes nothing.
    np.testing.assert_allclose(hist[-1], hist[-2], atol=1e-6)


def test_per_sample_stopping_batch_independent():
    # Each entry stops on its own: its result alone equals its result inside a (mixed) batch.
    rng = np.random.default_rng(7)
    h, leak = _cn(rng, (6, 3, 4)), _cn(rng, (6, 2, 4))
    P = np.array([0.1, 1.0, 10.0, 100.0, 3.0, 30.0])
    noise = np.array([1.0, 0.1, 1.0, 0.01, 0.5, 1.0])
    W, p, hist = slnr_beamformer(h, P, noise, leak=leak, return_info=True)
    rounds = []
    for s in range(6):
        Ws, ps, hs = slnr_beamformer(h[s:s + 1], P[s], noise[s], leak=leak[s:s + 1], return_info=True)
        np.testing.assert_allclose(Ws[0], W[s], rtol=0, atol=1e-12 * np.sqrt(P[s]))
        np.testing.assert_allclose(ps[0], p[s], rtol=1e-12)
        n = len(hs)  # a frozen entry repeats its final objective in the later rows of the batch history
        np.testing.assert_allclose(hist[:n, s], hs[:, 0], rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(hist[n:, s], hs[-1, 0], rtol=1e-12, atol=1e-12)
        rounds.append(n - 1)
    assert len(hist) == max(rounds) + 1 and min(rounds) < max(rounds)  # the entries did stop at different rounds
    # Multicell: per cell the same, so a sample alone equals its result inside the batch.
    hm = _cn(rng, (4, 3, 6, 4))
    Wm = multicell_slnr_beamformer(hm, P[:4], noise[:4], 2)
    for s in range(4):
        np.testing.assert_allclose(multicell_slnr_beamformer(hm[s:s + 1], P[s], noise[s], 2)[0], Wm[s],
                                   rtol=0, atol=1e-12 * np.sqrt(P[s]))


def test_slnr_beats_mrt_sum_rate_moderate_snr():
    # Nt=4, K=3, P/noise = 10 dB, 300 i.i.d. Rayleigh channels; actual SINR sum rate (eq. 2).
    rng = np.random.default_rng(4)
    h = _cn(rng, (300, 3, 4))
    P, noise = 1.0, 0.1
    r_slnr = miso_sum_rate(h, slnr_beamformer(h, P, noise), noise)
    r_mrt = miso_sum_rate(h, mrt_beamformer(h, P), noise)
    # Observed: mean 8.59 (SLNR) vs 4.71 (MRT) bits/s/Hz, SLNR >= MRT on all 300 channels
    # (ZF 7.50, WMMSE 8.93 on the same draw).
    assert r_slnr.mean() > r_mrt.mean() + 2.0
    assert np.mean(r_slnr >= r_mrt) > 0.95


def test_multicell_decouples_per_cell():
    rng = np.random.default_rng(5)
    nc, kc, Nt, b = 3, 2, 4, 3
    h = _cn(rng, (b, nc, nc * kc, Nt)) * np.sqrt(rng.uniform(0.1, 1.0, (b, nc, nc * kc, 1)))
    W = multicell_slnr_beamformer(h, 1.0, 0.05, kc)
    assert W.shape == (b, nc, Nt, kc)
    np.testing.assert_allclose((np.abs(W) ** 2).sum(axis=(2, 3)), 1.0, rtol=1e-12)
    W1 = slnr_beamformer(h[:, 1, 2:4], 1.0, 0.05, leak=h[:, 1, [0, 1, 4, 5]])
    np.testing.assert_allclose(W[:, 1], W1)
    rates = multicell_user_rates(h, W, 0.05)
    assert rates.shape == (b, nc * kc) and np.all(rates > 0)
    # Loop reference for eq. (26).
    for bb in range(b):
        for u in range(nc * kc):
            i, k = divmod(u, kc)
            s = abs(np.vdot(h[bb, i, u], W[bb, i, :, k])) ** 2
            tot = sum(abs(np.vdot(h[bb, j, u], W[bb, j, :, m])) ** 2 for j in range(nc) for m in range(kc))
            np.testing.assert_allclose(rates[bb, u], np.log2(1 + s / (tot - s + 0.05)), rtol=1e-10)


def test_input_errors():
    _, h, _, p = _setup(seed=6)
    with pytest.raises(ValueError):
        slnr_directions(h, p[:, :2], 0.1)
    with pytest.raises(ValueError):
        slnr_beamformer(h, 1.0, -0.1)
    with pytest.raises(ValueError):
        multicell_slnr_beamformer(h[:, None], 1.0, 0.1, 2)
