"""The MU-MIMO system of Kong et al. Sec. II (mimokd.classical.mimo): channels, pilots, MMSE."""

import numpy as np
import pytest

from mimokd.classical.mimo import (
    dft_pilots,
    mmse_estimate,
    pilots_to_real,
    rayleigh_channels,
    received_pilots,
)

M, N, K, L, P_TRAIN = 8, 2, 4, 8, 10.0


def _cn(rng, shape):
    """The documented draw: real parts first, then imaginary parts, / sqrt(2)."""
    return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)) / np.sqrt(2.0)


# --- channels -------------------------------------------------------------------------------


def test_rayleigh_channels_shape_dtype_and_statistics():
    H = rayleigh_channels(2000, K, M, N, rng=0)
    assert H.shape == (2000, K, M, N) and H.dtype == np.complex64
    h = H.astype(np.complex128).ravel()  # 128,000 entries
    assert abs(h.mean()) < 0.01
    assert np.mean(np.abs(h) ** 2) == pytest.approx(1.0, abs=0.01)
    assert np.var(h.real) == pytest.approx(0.5, abs=0.01)
    assert np.var(h.imag) == pytest.approx(0.5, abs=0.01)
    assert abs(np.mean(h.real * h.imag)) < 0.01  # circular: Re and Im uncorrelated
    assert abs(np.mean(h * h)) < 0.01  # pseudo-covariance E[h^2] = 0
    # i.i.d. across BS antennas: sample covariance over 16,000 vectors h in C^M is ~ I_M (std 0.008)
    x = np.moveaxis(H.astype(np.complex128), 2, -1).reshape(-1, M)
    np.testing.assert_allclose(x.T @ x.conj() / len(x), np.eye(M), atol=0.05)


def test_rayleigh_channels_seeded_reproducibility():
    a = rayleigh_channels(3, K, M, N, rng=7)
    np.testing.assert_array_equal(a, rayleigh_channels(3, K, M, N, rng=7))
    np.testing.assert_array_equal(a, rayleigh_channels(3, K, M, N, rng=np.random.default_rng(7)))
    assert not np.array_equal(a, rayleigh_channels(3, K, M, N, rng=8))
    # the documented draw order
    np.testing.assert_allclose(a, _cn(np.random.default_rng(7), (3, K, M, N)), rtol=1e-6)
    # a shared generator advances: two calls give different draws
    g = np.random.default_rng(1)
    assert not np.array_equal(rayleigh_channels(2, 1, 2, 1, g), rayleigh_channels(2, 1, 2, 1, g))


def test_rayleigh_channels_rejects_bad_arguments():
    with pytest.raises(ValueError, match="`batch` must be a positive integer"):
        rayleigh_channels(0, K, M, N, rng=0)
    with pytest.raises(ValueError, match="`M` must be a positive integer"):
        rayleigh_channels(2, K, 8.0, N, rng=0)
    with pytest.raises(TypeError, match="numpy.random.Generator or an int seed"):
        rayleigh_channels(2, K, M, N, rng=None)


# --- pilots ---------------------------------------------------------------------------------


@pytest.mark.parametrize("m, length", [(8, 8), (8, 3), (6, 4), (4, 1)])
def test_dft_pilots_orthonormal_columns(m, length):
    P = dft_pilots(m, length)
    assert P.shape == (m, length) and P.dtype == np.complex64
    np.testing.assert_allclose(P.conj().T @ P, np.eye(length), atol=1e-6)
    np.testing.assert_allclose(np.abs(P), 1 / np.sqrt(m), rtol=1e-6)  # constant modulus


def test_dft_pilots_unitary_at_l_equals_m_and_matches_the_paper():
    P = dft_pilots(M, M)
    np.testing.assert_allclose(P @ P.conj().T, np.eye(M), atol=1e-6)
    # the paper's i-th component of p_l: exp(j 2 pi (i-1)(l-1) / L) / sqrt(M), at L = M
    paper = np.array([[np.exp(2j * np.pi * i * j / M) / np.sqrt(M) for j in range(M)] for i in range(M)])
    np.testing.assert_allclose(P, paper, atol=1e-6)
    with pytest.raises(ValueError, match="L <= M"):
        dft_pilots(4, 5)


# --- received pilots ------------------------------------------------------------------------


def test_received_pilots_follow_the_formula_with_noise_from_the_same_rng():
    H = rayleigh_channels(5, K, M, N, rng=0)
    P = dft_pilots(M, L)
    Y = received_pilots(H, P, P_TRAIN, rng=np.random.default_rng(3))
    assert Y.shape == (5, K, N, L) and Y.dtype == np.complex64
    noise = _cn(np.random.default_rng(3), (5, K, N, L))
    expected = np.empty((5, K, N, L), complex)
    for b in range(5):
        for k in range(K):
            for j in range(L):
                expected[b, k, :, j] = np.sqrt(P_TRAIN) * H[b, k].conj().T @ P[:, j] + noise[b, k, :, j]
    np.testing.assert_allclose(Y, expected, rtol=1e-5, atol=1e-5)
    # an int seed is the same as a fresh generator of that seed
    np.testing.assert_array_equal(Y, received_pilots(H, P, P_TRAIN, rng=3))


def test_received_pilots_rejects_mismatched_shapes():
    H = rayleigh_channels(2, K, M, N, rng=0)
    with pytest.raises(ValueError, match="M = pilots.shape"):
        received_pilots(H, dft_pilots(4, 4), P_TRAIN, rng=0)
    with pytest.raises(ValueError, match="L <= M"):
        received_pilots(H, np.ones((4, 8)), P_TRAIN, rng=0)
    with pytest.raises(ValueError, match="p_train"):
        received_pilots(H, dft_pilots(M, L), 0.0, rng=0)


# --- MMSE estimation ------------------------------------------------------------------------


def test_mmse_beats_least_squares_and_has_the_theoretical_mse():
    H = rayleigh_channels(2000, K, M, N, rng=1)
    P = dft_pilots(M, M)  # L = M, unitary: LS is P Y^H / sqrt(P_train)
    Y = received_pilots(H, P, P_TRAIN, rng=2)
    H_mmse = mmse_estimate(Y, P, P_TRAIN)
    assert H_mmse.shape == H.shape and H_mmse.dtype == np.complex64
    H_ls = np.einsum("ml,bknl->bkmn", P, Y.conj()) / np.sqrt(P_TRAIN)
    mse_mmse = np.mean(np.abs(H_mmse - H) ** 2)
    mse_ls = np.mean(np.abs(H_ls - H) ** 2)
    assert mse_mmse < mse_ls
    assert mse_mmse == pytest.approx(1 / (1 + P_TRAIN), rel=0.03)
    assert mse_ls == pytest.approx(1 / P_TRAIN, rel=0.03)
    # orthonormal pilots: the closed form shrinks LS by P_train / (1 + P_train)
    np.testing.assert_allclose(H_mmse, H_ls * P_TRAIN / (1 + P_TRAIN), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("pilot_kind", ["dft_short", "random"])
def test_mmse_matches_the_covariance_formula_on_the_vectorized_model(pilot_kind):
    """Independent check: vec form y = A vec(H_k) + n, h_hat = C_hy C_yy^{-1} y via numpy.linalg.solve."""
    m, n, length, p_train = 6, 2, 4, 3.0
    rng = np.random.default_rng(5)
    if pilot_kind == "dft_short":
        P = dft_pilots(m, length).astype(complex)
    else:  # not orthogonal, not unit norm: exercises the general closed form
        P = _cn(rng, (m, length))
    H = rayleigh_channels(3, 2, m, n, rng=6)
    Y = received_pilots(H, P, p_train, rng=7)
    got = mmse_estimate(Y, P, p_train)

    # conj(Y_k)^T = sqrt(p) P^H H_k + noise, so vec(conj(Y_k)^T) = sqrt(p) (I_N kron P^H) vec(H_k) + noise
    A = np.sqrt(p_train) * np.kron(np.eye(n), P.conj().T)  # [n L, m n]
    C_hy = A.conj().T  # E[h y^H] with E[h h^H] = I
    C_yy = A @ A.conj().T + np.eye(n * length)
    for b in range(3):
        for k in range(2):
            y = Y[b, k].conj().T.reshape(-1, order="F")  # vec, column-major
            h_hat = C_hy @ np.linalg.solve(C_yy, y)
            np.testing.assert_allclose(got[b, k], h_hat.reshape(m, n, order="F"), rtol=1e-4, atol=1e-5)


def test_mmse_estimate_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="L = pilots.shape"):
        mmse_estimate(np.zeros((2, K, N, 4), complex), dft_pilots(M, L), P_TRAIN)


# --- real input of the receiver DNN ---------------------------------------------------------


def test_pilots_to_real_stacks_columns_then_real_then_imaginary():
    Y = received_pilots(rayleigh_channels(3, K, M, N, rng=0), dft_pilots(M, L), P_TRAIN, rng=1)
    r = pilots_to_real(Y)
    assert r.shape == (3, K, 2 * N * L) == (3, K, 32) and r.dtype == np.float32
    for b in range(3):
        for k in range(K):
            r_c = np.concatenate([Y[b, k][:, col] for col in range(L)])  # first column first
            np.testing.assert_array_equal(r[b, k], np.concatenate([r_c.real, r_c.imag]).astype(np.float32))
    # a hand-made case: Y_k = [[1, 3], [2, 4]] + j [[5, 7], [6, 8]] -> [1 2 3 4 5 6 7 8]
    Y_small = (np.array([[1, 3], [2, 4]]) + 1j * np.array([[5, 7], [6, 8]]))[None, None]
    np.testing.assert_array_equal(pilots_to_real(Y_small)[0, 0], np.arange(1, 9, dtype=np.float32))
    with pytest.raises(ValueError, match=r"\[batch, K, N, L\]"):
        pilots_to_real(np.zeros((3, N, L), complex))
