"""Zhang et al.: uplink / downlink channels, multicell geometry, uplink pilots (mimokd.channels.uplink_downlink)."""

import numpy as np
import pytest

from mimokd.channels.uplink_downlink import (
    SPEED_OF_LIGHT,
    dbm_to_w,
    drop_users,
    fdd_multipath_channels,
    haar_unitary,
    hexagonal_cells,
    large_scale_gains,
    lmmse_estimate,
    ls_input,
    make_front_end,
    noise_power_w,
    path_loss_db,
    received_uplink,
    tdd_mismatch_channels,
    ula_steering,
    uplink_pilots,
    uplink_statistics,
)


# ------------------------------------------------------------------------------------ TDD, eq. (38)


def test_haar_unitary_is_unitary():
    phi = haar_unitary(8, 0)
    np.testing.assert_allclose(phi.conj().T @ phi, np.eye(8), atol=1e-12)
    np.testing.assert_allclose(phi @ phi.conj().T, np.eye(8), atol=1e-12)


def test_tdd_downlink_is_c_phi_h_up_with_shared_front_end():
    phi, c = make_front_end(6, 1)
    h_up, h_down = tdd_mismatch_channels(5, 6, 6, 2, phi=phi, c=c)
    assert h_up.shape == h_down.shape == (5, 6, 6) and h_up.dtype == h_down.dtype == np.complex64
    for b in range(5):
        for k in range(6):
            np.testing.assert_allclose(h_down[b, k], c * phi @ h_up[b, k], rtol=1e-5, atol=1e-5)
    # the same front-end with another seed: the same mapping on new channels
    h_up2, h_down2 = tdd_mismatch_channels(3, 6, 6, 3, phi=phi, c=c)
    np.testing.assert_allclose(h_down2, c * np.einsum("mn,bkn->bkm", phi, h_up2), atol=1e-5)
    # without a front-end one is drawn first from rng, reproducibly
    g = np.random.default_rng(4)
    phi3, c3 = make_front_end(6, g)
    ref_up = (g.standard_normal((2, 6, 6)) + 1j * g.standard_normal((2, 6, 6))) / np.sqrt(2)
    h_up3, h_down3 = tdd_mismatch_channels(2, 6, 6, 4)
    np.testing.assert_allclose(h_up3, ref_up, atol=1e-6)
    np.testing.assert_allclose(h_down3, c3 * np.einsum("mn,bkn->bkm", phi3, ref_up), atol=1e-5)


def test_tdd_uplink_is_cn01():
    h_up, _ = tdd_mismatch_channels(4000, 4, 8, 5)
    assert abs(h_up.mean()) < 0.02
    assert abs(np.mean(np.abs(h_up) ** 2) - 1.0) < 0.02
    assert abs(np.mean(h_up.real ** 2) - 0.5) < 0.01 and abs(np.mean(h_up.imag ** 2) - 0.5) < 0.01
    assert abs(np.mean(h_up ** 2)) < 0.02  # circular: E[h^2] = 0
    # independent antennas / users
    flat = h_up.reshape(-1, 32)
    cov = flat.conj().T @ flat / flat.shape[0]
    assert np.max(np.abs(cov - np.eye(32))) < 0.06


def test_tdd_validation():
    phi, c = make_front_end(4, 0)
    with pytest.raises(ValueError, match="both"):
        tdd_mismatch_channels(2, 2, 4, 0, phi=phi)
    with pytest.raises(ValueError, match="unitary"):
        tdd_mismatch_channels(2, 2, 4, 0, phi=2 * phi, c=c)
    with pytest.raises(ValueError, match="Nt"):
        tdd_mismatch_channels(2, 2, 4, 0, phi=phi[:3, :3], c=c)
    with pytest.raises(ValueError, match="batch"):
        tdd_mismatch_channels(0, 2, 4, 0)
    with pytest.raises(TypeError, match="rng"):
        tdd_mismatch_channels(2, 2, 4, "seed")


# ------------------------------------------------------------------------------- FDD, eq. (18)-(19), (40)


def test_ula_steering_closed_form():
    f, d, theta = 2.4e9, SPEED_OF_LIGHT / (2 * 2.4e9), np.array([0.3, -1.1])
    a = ula_steering(theta, 5, f, d)
    n = np.arange(5)
    np.testing.assert_allclose(a, np.exp(-1j * np.pi * n[None, :] * np.sin(theta)[:, None]), atol=1e-12)
    a_up = ula_steering(theta, 5, 2.5e9, d)  # same array, uplink carrier: f_up / f_down half-wavelengths
    np.testing.assert_allclose(a_up, np.exp(-1j * np.pi * (2.5 / 2.4) * n[None, :] * np.sin(theta)[:, None]),
                               atol=1e-12)


def test_fdd_same_paths_equal_channels_at_equal_frequencies():
    d = SPEED_OF_LIGHT / (2 * 2.4e9)
    kw = dict(downlink="physical", spacing=d)
    up_24, down_24 = fdd_multipath_channels(4, 3, 16, 7, f_up=2.4e9, f_down=2.4e9, **kw)
    np.testing.assert_array_equal(up_24, down_24)
    up_25, down_25 = fdd_multipath_channels(4, 3, 16, 7, f_up=2.5e9, f_down=2.5e9, **kw)
    np.testing.assert_array_equal(up_25, down_25)
    up, down = fdd_multipath_channels(4, 3, 16, 7, **kw)  # 2.5 GHz up, 2.4 GHz down: the same paths
    np.testing.assert_array_equal(up, up_25)
    np.testing.assert_array_equal(down, down_24)
    assert np.max(np.abs(up - down)) > 0.1


def test_fdd_channels_follow_eq18_and_eq40_from_their_paths():
    Nt, paths = 8, 3
    (h_up, h_down, info) = fdd_multipath_channels(3, 2, Nt, 11, paths=paths, return_paths=True)
    assert h_up.shape == h_down.shape == (3, 2, Nt) and h_up.dtype == np.complex64
    d = SPEED_OF_LIGHT / (2 * 2.4e9)
    assert info["spacing"] == pytest.approx(d)
    theta, tau, phase, alpha = info["theta"], info["tau"], info["phase"], info["alpha"]
    assert np.all((tau >= 0) & (tau <= 1e-4)) and np.all(np.abs(phase) <= np.pi)
    assert np.all(np.abs(theta - info["theta_bar"][..., None]) <= np.pi / 12 + 1e-12)
    phi, c = info["phi"], info["c"]
    np.testing.assert_allclose(phi.conj().T @ phi, np.eye(Nt), atol=1e-10)
    n = np.arange(Nt)
    for b in range(3):
        for k in range(2):
            up = np.zeros(Nt, complex)
            down = np.zeros(Nt, complex)
            for li in range(paths):
                a_u = np.exp(-2j * np.pi * d * 2.5e9 / SPEED_OF_LIGHT * n * np.sin(theta[b, k, li]))
                a_d = np.exp(-1j * np.pi * n * np.sin(theta[b, k, li]))
                up += alpha[b, k, li] * np.exp(-2j * np.pi * 2.5e9 * tau[b, k, li] + 1j * phase[b, k, li]) * a_u
                down += alpha[b, k, li] ** 2 * np.exp(-2j * np.pi * 2.4e9 * tau[b, k, li]
                                                      + 1j * phase[b, k, li]) * a_d
            np.testing.assert_allclose(h_up[b, k], up, rtol=1e-4, atol=1e-4)
            np.testing.assert_allclose(h_down[b, k], c * phi @ down, rtol=1e-4, atol=1e-4)


def test_fdd_validation():
    with pytest.raises(ValueError, match="downlink"):
        fdd_multipath_channels(2, 2, 4, 0, downlink="other")
    with pytest.raises(ValueError, match="eq40"):
        fdd_multipath_channels(2, 2, 4, 0, downlink="physical", c=1.0)
    with pytest.raises(ValueError, match="angle_spread"):
        fdd_multipath_channels(2, 2, 4, 0, angle_spread=4.0)


# ------------------------------------------------------------------------------ multicell, Sec. VII-C


def test_hexagonal_cells_geometry():
    bs = hexagonal_cells(7, 200.0)
    assert bs.shape == (7, 2)
    np.testing.assert_allclose(bs[0], [0.0, 0.0])
    np.testing.assert_allclose(np.hypot(*bs[1:].T), np.sqrt(3) * 200.0)
    angles = np.sort(np.degrees(np.arctan2(bs[1:, 1], bs[1:, 0])) % 360)
    np.testing.assert_allclose(angles, [30, 90, 150, 210, 270, 330], atol=1e-9)
    bs19 = hexagonal_cells(19, 1.0)
    np.testing.assert_allclose(bs19[:7], hexagonal_cells(7, 1.0))
    r2 = np.sort(np.hypot(*bs19[7:].T))
    np.testing.assert_allclose(r2, np.sort([2 * np.sqrt(3)] * 6 + [3.0] * 6), atol=1e-9)
    pair = np.hypot(*(bs19[:, None] - bs19[None]).transpose(2, 0, 1))
    assert np.min(pair + 10 * np.eye(19)) == pytest.approx(np.sqrt(3))  # no duplicates, lattice spacing


def test_drop_users_inside_their_hexagon_and_beyond_min_distance():
    R = 200.0
    users = drop_users(300, 2, 8, radius=R, min_distance=10.0)
    bs = hexagonal_cells(7, R)
    assert users.shape == (300, 7, 2, 2)
    off = users - bs[None, :, None, :]
    dist = np.hypot(off[..., 0], off[..., 1])
    assert dist.min() >= 10.0 and dist.max() <= R + 1e-9
    x, y = np.abs(off[..., 0]), np.abs(off[..., 1])
    assert np.all(y <= np.sqrt(3) / 2 * R + 1e-9) and np.all(np.sqrt(3) * x + y <= np.sqrt(3) * R + 1e-9)
    # the serving BS is the nearest one
    all_d = np.hypot(*(users[..., None, :] - bs).transpose(4, 0, 1, 2, 3))
    assert np.all(np.argmin(all_d, axis=-1) == np.arange(7)[None, :, None])
    # uniform over the area: about half the users beyond the radius sqrt(A / (2 pi)) (A = hexagon - disc)
    area = 3 * np.sqrt(3) / 2 * R ** 2 - np.pi * 10.0 ** 2
    r_half = np.sqrt((area / 2 + np.pi * 10.0 ** 2) / np.pi)
    assert abs(np.mean(dist < r_half) - 0.5) < 0.04


def test_path_loss_and_noise_closed_forms():
    # eq. (42), d in km: 100 m, 1 km, 50 m
    np.testing.assert_allclose(path_loss_db([100.0, 1000.0, 50.0], "up"),
                               [127 - 30, 127, 127 + 30 * np.log10(0.05)])
    np.testing.assert_allclose(path_loss_db(100.0, "down"), 128.1 - 37.6)
    np.testing.assert_allclose(path_loss_db(1000.0, "down"), 128.1)
    np.testing.assert_allclose(path_loss_db(50.0, "down"), 128.1 + 37.6 * np.log10(0.05))
    # -174 dBm/Hz over 20 MHz = -174 + 73.01 dBm = -100.99 dBm
    p = noise_power_w()
    assert p == pytest.approx(1e-3 * 10 ** (-17.4) * 2e7)
    assert 10 * np.log10(p / 1e-3) == pytest.approx(-174 + 10 * np.log10(2e7))
    assert float(dbm_to_w(10.0)) == pytest.approx(0.01)
    with pytest.raises(ValueError, match="link"):
        path_loss_db(10.0, "side")
    with pytest.raises(ValueError, match="distance"):
        path_loss_db(0.0)


def test_large_scale_gains_between_every_bs_and_user():
    bs = hexagonal_cells(7)
    users = drop_users(4, 1, 0).reshape(4, 7, 2)
    g_up, g_down, dist = large_scale_gains(bs, users)
    assert g_up.shape == g_down.shape == dist.shape == (4, 7, 7)
    j, u = 3, 5
    d = np.hypot(*(users[2, u] - bs[j]))
    assert dist[2, j, u] == pytest.approx(d)
    assert g_up[2, j, u] == pytest.approx(10 ** (-(127 + 30 * np.log10(d / 1000)) / 10))
    assert g_down[2, j, u] == pytest.approx(10 ** (-(128.1 + 37.6 * np.log10(d / 1000)) / 10))


# --------------------------------------------------------------------------- pilots, eq. (11)-(17)


@pytest.mark.parametrize("K,L", [(4, 4), (3, 7), (7, 7), (6, 4)])
def test_pilots_are_scaled_dft_and_orthogonal(K, L):
    P = 2.5
    x = uplink_pilots(K, L, P).astype(np.complex128)
    D = max(K, L)
    np.testing.assert_allclose(x, np.sqrt(P) * np.fft.fft(np.eye(D))[:K, :L], atol=1e-5)
    np.testing.assert_allclose(np.abs(x) ** 2, P, rtol=1e-5)
    if L >= K:
        np.testing.assert_allclose(x @ x.conj().T, L * P * np.eye(K), atol=1e-4)
    else:
        np.testing.assert_allclose(x.conj().T @ x, K * P * np.eye(L), atol=1e-4)


def test_received_and_ls_input_noiseless_limit_and_layout():
    h, _ = tdd_mismatch_channels(3, 4, 8, 0)
    x = uplink_pilots(4, 6, 3.0)
    y = received_uplink(h, x, 1e-12, 1)
    assert y.shape == (3, 8, 6) and y.dtype == np.complex64
    np.testing.assert_allclose(y, np.swapaxes(h, 1, 2) @ x, atol=1e-4)
    np.testing.assert_allclose(ls_input(y, x), h, atol=1e-4)
    # multicell layout [batch, num_bs, K_total, Nt]
    h4 = h.reshape(3, 1, 4, 8).repeat(2, axis=1)
    assert received_uplink(h4, x, 1.0, 0).shape == (3, 2, 8, 6)
    with pytest.raises(ValueError, match="rows"):
        received_uplink(h, uplink_pilots(3, 6), 1.0, 0)


def test_lmmse_beats_ls_and_matches_vectorised_solve():
    Nt, K, L, sigma2 = 8, 4, 4, 1.0
    x = uplink_pilots(K, L, 1.0)
    h, _ = tdd_mismatch_channels(3000, K, Nt, 21)
    y = received_uplink(h, x, sigma2, 22)
    mse_ls = np.mean(np.abs(ls_input(y, x) - h) ** 2)
    mse_lmmse = np.mean(np.abs(lmmse_estimate(y, x, sigma2) - h) ** 2)
    assert mse_ls == pytest.approx(sigma2 / (L * 1.0), rel=0.05)
    assert mse_lmmse == pytest.approx(1 / (1 + L / sigma2), rel=0.05)
    assert mse_lmmse < 0.85 * mse_ls

    # independent: vec(Y) = (X^T kron I_Nt) vec(H_U) + vec(N), Cov(vec H_U) = diag(beta) kron I_Nt
    rng = np.random.default_rng(3)
    beta = np.array([1.0, 0.3, 2.0, 0.7])
    xc = uplink_pilots(K, 3, 2.0).astype(np.complex128)  # L < K: pilot contamination
    hb = (h[:2] * np.sqrt(beta)[None, :, None]).astype(np.complex64)
    yb = received_uplink(hb, xc, 0.5, rng)
    est = lmmse_estimate(yb, xc, 0.5, Q=Nt * np.diag(beta))
    A = np.kron(xc.T, np.eye(Nt))
    C = np.kron(np.diag(beta), np.eye(Nt))
    for b in range(2):
        vy = yb[b].astype(np.complex128).reshape(-1, order="F")
        vh = C @ A.conj().T @ np.linalg.solve(A @ C @ A.conj().T + 0.5 * np.eye(A.shape[0]), vy)
        np.testing.assert_allclose(est[b], vh.reshape(Nt, K, order="F").T, rtol=1e-4, atol=1e-5)


def test_lmmse_with_mean_and_sample_statistics():
    Nt, K, L = 4, 2, 2
    x = uplink_pilots(K, L, 1.0)
    h, _ = tdd_mismatch_channels(2000, K, Nt, 5)
    hbar = (np.arange(K * Nt).reshape(K, Nt) * (1 + 1j) / 4).astype(np.complex64)
    h = h + hbar
    mean, q = uplink_statistics(h)
    np.testing.assert_allclose(mean, hbar, atol=0.1)
    np.testing.assert_allclose(q, Nt * np.eye(K), atol=0.3)
    y = received_uplink(h, x, 1.0, 6)
    est_mean = lmmse_estimate(y, x, 1.0, Q=q, mean=mean)
    est_zero = lmmse_estimate(y, x, 1.0, Q=q)
    assert np.mean(np.abs(est_mean - h) ** 2) < np.mean(np.abs(est_zero - h) ** 2)
    assert np.mean(np.abs(est_mean - h) ** 2) < np.mean(np.abs(ls_input(y, x) - h) ** 2)
    with pytest.raises(ValueError, match="Q"):
        lmmse_estimate(y, x, 1.0, Q=np.eye(3))
