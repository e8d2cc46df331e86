"""Multicell (IBC) WMMSE of mimokd.classical.multicell_wmmse: single-cell equivalence, per-BS power,
monotonicity, brute force on the 2-user SISO interference channel, stationarity, argument checks."""


import numpy as np
import pytest

from mimokd.classical.miso import miso_sum_rate, mrt_beamformer, wmmse
from mimokd.classical.multicell_wmmse import multicell_wmmse
from mimokd.classical.slnr import multicell_slnr_beamformer, multicell_user_rates
from mimokd.rng import complex_normal


def _channels(seed, batch, num_bs, users_per_cell, Nt, cross=1.0):
    """iid CN(0, 1) channels, the links to other cells' users scaled by ``cross`` (amplitude)."""
    h = complex_normal(np.random.default_rng(seed), (batch, num_bs, num_bs * users_per_cell, Nt))
    owner = np.arange(num_bs * users_per_cell) // users_per_cell
    scale = np.where(np.arange(num_bs)[:, None] == owner[None, :], 1.0, cross)
    return h * scale[None, :, :, None]


def _rate(h, W, noise):
    return multicell_user_rates(h, W, noise).sum(-1)


def _bs_power(W):
    return np.sum(np.abs(W) ** 2, axis=(2, 3))  # [batch, num_bs]


def _loop_rate(h, W, noise):
    """Eq. (26) by explicit loops (independent of the einsum in multicell_user_rates)."""
    b, nc, kt, _ = h.shape
    upc = kt // nc
    out = np.zeros(b)
    for s in range(b):
        for u in range(kt):
            rx = [abs(np.vdot(h[s, v // upc, u], W[s, v // upc, :, v % upc])) ** 2 for v in range(kt)]
            out[s] += np.log2(1 + rx[u] / (sum(rx) - rx[u] + noise))
    return out


@pytest.mark.parametrize("K, Nt", [(3, 4), (4, 3), (2, 6)])  # K >= Nt: full space; K < Nt: reduced subspace
def test_single_cell_equals_miso_wmmse(K, Nt):
    h = _channels(0, 5, 1, K, Nt)
    P = np.array([1.0, 3.0, 10.0, 30.0, 100.0])
    W, it = multicell_wmmse(h, P, 0.7, K, init="mrt", tol=1e-6)
    W_ref, _, _, it_ref = wmmse(h[:, 0], P, 0.7, init="mrt", tol=1e-6)
    assert W.shape == (5, 1, Nt, K) and W.dtype == np.complex128 and it.dtype == np.int64
    np.testing.assert_array_equal(it, it_ref)
    np.testing.assert_allclose(W[:, 0], W_ref, atol=1e-8 * np.sqrt(P.max()))
    np.testing.assert_allclose(_rate(h, W, 0.7), miso_sum_rate(h[:, 0], W_ref, 0.7), rtol=1e-10)
    np.testing.assert_allclose(_bs_power(W)[:, 0], P, rtol=1e-9)  # single cell: the budget is always tight


def test_rate_formula_and_shapes():
    h = _channels(1, 3, 3, 2, 4)
    W, it = multicell_wmmse(h, 5.0, 1.0, 2, max_iter=7)
    assert W.shape == (3, 3, 4, 2) and it.shape == (3,) and np.all((it >= 1) & (it <= 7))
    np.testing.assert_allclose(_rate(h, W, 1.0), _loop_rate(h, W, 1.0), rtol=1e-12)


@pytest.mark.parametrize("init", ["slnr", "mrt", "best"])
def test_per_bs_power(init):
    P = np.array([0.5, 2.0, 10.0, 50.0])
    h = _channels(2, 4, 3, 2, 5)  # K_total = 6 > Nt = 5: full space
    W, _ = multicell_wmmse(h, P, 1.0, 2, init=init)
    assert np.all(_bs_power(W) <= P[:, None] * (1 + 1e-9))
    # Weak inter-cell links (-40 dB): more power always helps, so every BS's budget is tight.
    hw = _channels(3, 4, 3, 2, 8, cross=1e-2)  # K_total = 6 < Nt = 8: reduced subspace
    Ww, _ = multicell_wmmse(hw, P, 1.0, 2, init=init)
    np.testing.assert_allclose(_bs_power(Ww), np.broadcast_to(P[:, None], (4, 3)), rtol=1e-9)


def test_sum_rate_non_decreasing_and_prefix_consistent():
    h = _channels(4, 6, 3, 2, 4)
    rates, Ws = [], []
    for t in range(1, 13):
        W, it = multicell_wmmse(h, 10.0, 1.0, 2, init="mrt", tol=0.0, max_iter=t)
        assert np.all(it == t)
        rates.append(_rate(h, W, 1.0))
        Ws.append(W)
    rates = np.array(rates)
    W0 = np.stack([mrt_beamformer(h[:, j, 2 * j:2 * j + 2], 10.0) for j in range(3)], axis=1)
    rates = np.vstack([_rate(h, W0, 1.0)[None], rates])
    assert np.all(np.diff(rates, axis=0) >= -1e-9 * np.abs(rates[1:]))
    assert np.all(rates[-1] > rates[0] + 0.1)  # and it does improve on MRT
    # more iterations from a converged-enough run: the tol rule stops at the first small change
    W, it = multicell_wmmse(h, 10.0, 1.0, 2, init="mrt", tol=1e-3, max_iter=12)
    for s in range(6):
        np.testing.assert_allclose(W[s], Ws[it[s] - 1][s], rtol=0, atol=1e-12)


def test_not_below_init_and_best():
    h = _channels(5, 6, 3, 2, 4)
    noise = 0.5
    P = np.array([1.0, 4.0, 10.0, 20.0, 40.0, 100.0])
    r = {init: _rate(h, multicell_wmmse(h, P, noise, 2, init=init)[0], noise) for init in ("slnr", "mrt", "best")}
    r_slnr = _rate(h, multicell_slnr_beamformer(h, P, noise, 2), noise)  # the distributed SLNR baseline
    W_mrt = np.stack([mrt_beamformer(h[:, j, 2 * j:2 * j + 2], P) for j in range(3)], axis=1)
    assert np.all(r["slnr"] >= r_slnr - 1e-9)
    assert np.all(r["mrt"] >= _rate(h, W_mrt, noise) - 1e-9)
    np.testing.assert_array_equal(r["best"], np.maximum(r["slnr"], r["mrt"]))
    assert np.mean(r["slnr"] - r_slnr) > 0.1  # WMMSE beats the SLNR baseline on average


@pytest.mark.parametrize("init", ["slnr", "best"])
def test_batch_independent_and_vector_arguments(init):
    h = _channels(7, 6, 3, 2, 8)  # reduced subspace
    P = np.array([0.3, 1.0, 3.0, 10.0, 30.0, 100.0])
    noise = np.array([1.0, 0.5, 2.0, 1.0, 0.1, 1.0])
    W, it = multicell_wmmse(h, P, noise, 2, init=init)
    for s in (0, 3, 5):
        Ws, its = multicell_wmmse(h[s:s + 1], P[s], noise[s], 2, init=init)
        assert its[0] == it[s]
        np.testing.assert_allclose(Ws[0], W[s], rtol=0, atol=1e-10 * np.sqrt(P[s]))
    W2, it2 = multicell_wmmse(h, P, noise, 2, init=init)  # deterministic
    np.testing.assert_array_equal(W2, W)
    np.testing.assert_array_equal(it2, it)


def _siso_rate(g, p1, p2):
    """2-user SISO interference channel, ``g[j, u] = |h_{j,u}|^2``, noise 1."""
    return np.log2(1 + p1 * g[0, 0] / (p2 * g[1, 0] + 1)) + np.log2(1 + p2 * g[1, 1] / (p1 * g[0, 1] + 1))


def test_siso_interference_channel_brute_force():
    """2 cells, 1 user each, Nt = 1: only the powers (p1, p2) matter; grid over [0, P]^2."""
    h = _channels(3, 12, 2, 1, 1)
    P = 10.0
    W, it = multicell_wmmse(h, P, 1.0, 1, init="best", tol=1e-12, max_iter=5000)
    assert np.all(it < 5000)
    r = _rate(h, W, 1.0)
    pw = _bs_power(W)
    g = np.abs(h[..., 0]) ** 2
    grid = np.linspace(0.0, P, 401)
    p1, p2 = np.meshgrid(grid, grid, indexing="ij")
    n_global = 0
    for s in range(len(h)):
        np.testing.assert_allclose(r[s], _siso_rate(g[s], *pw[s]), rtol=1e-12)
        R = _siso_rate(g[s], p1, p2)
        if r[s] >= R.max() - 1e-7:
            n_global += 1
            continue
        # otherwise a certified local optimum: no point of a fine grid over the box within 0.01 P is better ...
        local = [np.clip(pw[s, i] + np.linspace(-0.01, 0.01, 41) * P, 0.0, P) for i in range(2)]
        assert _siso_rate(g[s], *np.meshgrid(*local, indexing="ij")).max() <= r[s] + 1e-12
        # ... and the KKT conditions of the box [0, P]^2 hold (d R / d p_i >= 0 at p_i = P, = 0 inside)
        e = 1e-6 * P
        for i in range(2):
            step = np.eye(2)[i] * e
            d = (_siso_rate(g[s], *(pw[s] + step)) - _siso_rate(g[s], *(pw[s] - step))) / (2 * e)
            assert d >= -1e-6 if pw[s, i] >= P * (1 - 1e-9) else abs(d) <= 1e-6
    assert n_global >= 8  # this seed: 8 of 12 channels reach the global (binary power control) optimum
    assert np.any(pw.min(axis=1) < 1e-6 * P)  # and a BS switched off there: budgets need not be tight


def _directional_derivatives(h, W, P, noise, rng, n_dirs=6, eps=1e-6):
    """Central-difference derivatives of the sum rate along random feasible directions, per sample:
    tangent to the power sphere of every BS at its budget (retracted back onto it), free otherwise;
    plus, for BSs at their budget, the inward direction -W_j (less power). Returns (tangent, inward)."""
    b, nc, Nt, upc = W.shape
    tight = _bs_power(W) >= P * (1 - 1e-9)  # [b, nc]

    def project(X):
        return np.where(tight[:, :, None, None], np.sqrt(P) * X / np.sqrt(_bs_power(X))[:, :, None, None], X)

    tangent = []
    for _ in range(n_dirs):
        D = complex_normal(rng, W.shape)
        along = np.real(np.sum(W.conj() * D, axis=(2, 3))) / np.maximum(_bs_power(W), 1e-300)
        D = np.where(tight[:, :, None, None], D - along[:, :, None, None] * W, D)
        D /= np.linalg.norm(D.reshape(b, -1), axis=1)[:, None, None, None]
        d = (_rate(h, project(W + eps * D), noise) - _rate(h, project(W - eps * D), noise)) / (2 * eps)
        tangent.append(d)
    inward = []
    for j in range(nc):
        D = np.zeros_like(W)
        D[:, j] = -W[:, j]
        d = (_rate(h, W + eps * D, noise) - _rate(h, W - eps * D, noise)) / (2 * eps)
        inward.append(np.where(tight[:, j], d, -np.inf))
    return np.array(tangent), np.array(inward)


@pytest.mark.parametrize("upc", [1, 2])
def test_stationary_point_nt2(upc):
    """Nt = 2: at convergence no small feasible perturbation increases the sum rate to first order."""
    h = _channels(8, 4, 2, upc, 2)
    P, noise = 10.0, 1.0
    W, it = multicell_wmmse(h, P, noise, upc, init="slnr", tol=1e-14, max_iter=20000)
    assert np.all(it < 20000)
    tangent, inward = _directional_derivatives(h, W, P, noise, np.random.default_rng(0))
    assert np.max(np.abs(tangent)) <= 1e-5
    assert np.max(inward) <= 1e-5  # KKT: mu_j >= 0, taking power away does not help
    # the check has teeth: at the SLNR starting point some feasible direction gains a lot
    W0 = multicell_slnr_beamformer(h, P, noise, upc)
    tangent0, inward0 = _directional_derivatives(h, W0, P, noise, np.random.default_rng(0))
    assert max(np.max(np.abs(tangent0)), np.max(inward0)) > 1e-2


def test_bad_arguments():
    h = _channels(9, 2, 3, 2, 4)
    with pytest.raises(ValueError, match="`h`"):
        multicell_wmmse(h[:, 0], 1.0, 1.0, 2)
    with pytest.raises(ValueError, match="`users_per_cell`"):
        multicell_wmmse(h, 1.0, 1.0, 3)
    with pytest.raises(ValueError, match="`users_per_cell`"):
        multicell_wmmse(h, 1.0, 1.0, 2.0)
    with pytest.raises(ValueError, match="`P`"):
        multicell_wmmse(h, -1.0, 1.0, 2)
    with pytest.raises(ValueError, match="`P`"):
        multicell_wmmse(h, np.ones(3), 1.0, 2)
    with pytest.raises(ValueError, match="`noise`"):
        multicell_wmmse(h, 1.0, 0.0, 2)
    with pytest.raises(ValueError, match="`init`"):
        multicell_wmmse(h, 1.0, 1.0, 2, init="zf")
    with pytest.raises(ValueError, match="`max_iter`"):
        multicell_wmmse(h, 1.0, 1.0, 2, max_iter=0)
    with pytest.raises(ValueError, match="`max_iter`"):
        multicell_wmmse(h, 1.0, 1.0, 2, max_iter="10")
    with pytest.raises(ValueError, match="`tol`"):
        multicell_wmmse(h, 1.0, 1.0, 2, tol=-1.0)
    with pytest.raises(ValueError, match="`tol`"):
        multicell_wmmse(h, 1.0, 1.0, 2, tol=None)
    bad = h.copy()
    bad[0, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="`h`"):
        multicell_wmmse(bad, 1.0, 1.0, 2)
