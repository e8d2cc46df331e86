"""Codebook limited feedback (mimokd.classical.codebook): tiny sizes, independent checks."""

import numpy as np
import pytest

from mimokd.classical.codebook import (
    channel_basis,
    chordal_distance,
    expected_sinr_distance,
    lloyd_codebook,
    quantize,
    random_semi_unitary,
)
from mimokd.classical.mimo import rayleigh_channels

M, N, K = 4, 2, 2


def _unitary(rng, n):
    q, _ = np.linalg.qr(rng.standard_normal((n, n)) + 1j * rng.standard_normal((n, n)))
    return q


def test_random_semi_unitary_is_orthonormal_and_seeded():
    A = random_semi_unitary(8, M, N, 3)
    assert A.shape == (8, M, N) and A.dtype == np.complex64
    np.testing.assert_allclose(np.conj(np.swapaxes(A, 1, 2)) @ A, np.broadcast_to(np.eye(N), (8, N, N)), atol=1e-5)
    np.testing.assert_array_equal(A, random_semi_unitary(8, M, N, np.random.default_rng(3)))
    with pytest.raises(ValueError, match="N <= M"):
        random_semi_unitary(2, 2, 3, 0)


def test_channel_basis_spans_the_channel():
    H = rayleigh_channels(5, K, M, N, 0)
    U, s = channel_basis(H, return_singular_values=True)
    assert U.shape == H.shape and U.dtype == np.complex64
    assert np.all(np.diff(s, axis=-1) <= 0)
    Uh = np.conj(np.swapaxes(U, -1, -2))
    np.testing.assert_allclose(Uh @ U, np.broadcast_to(np.eye(N), Uh.shape[:-2] + (N, N)), atol=1e-5)
    np.testing.assert_allclose(U @ (Uh @ H), H, atol=1e-4)  # U U^H H = H


def test_chordal_distance_zero_for_same_subspace_and_rotation_invariant():
    rng = np.random.default_rng(1)
    A = random_semi_unitary(3, M, N, rng).astype(np.complex128)
    U = random_semi_unitary(5, M, N, rng).astype(np.complex128)
    same = A @ _unitary(rng, N)
    np.testing.assert_allclose(np.diagonal(chordal_distance(A, same)), 0.0, atol=1e-6)

    d = chordal_distance(A, U)
    assert d.shape == (5, 3)
    np.testing.assert_allclose(chordal_distance(A @ _unitary(rng, N), U @ _unitary(rng, N)), d, atol=1e-10)
    # independent form: ||A A^H - U U^H||_F / sqrt(2)
    for b in range(5):
        for c in range(3):
            ref = np.linalg.norm(A[c] @ A[c].conj().T - U[b] @ U[b].conj().T) / np.sqrt(2)
            assert d[b, c] == pytest.approx(ref, abs=1e-6)  # complex64 codewords
    assert np.all(d <= np.sqrt(N) + 1e-12)


@pytest.mark.parametrize("distance", ["chordal", "expected_sinr"])
def test_quantize_picks_the_brute_force_argmin(distance):
    rng = np.random.default_rng(2)
    P = 10.0
    codebook = random_semi_unitary(8, M, N, rng)
    H = rayleigh_channels(20, 1, M, N, rng)[:, 0]
    idx, words = quantize(H, codebook, distance=distance, P=P)
    assert idx.shape == (20,) and words.shape == (20, M, N)

    for b in range(20):
        h = H[b].astype(np.complex128)
        U = np.linalg.svd(h, full_matrices=False)[0]
        costs = []
        for A in codebook.astype(np.complex128):
            proj = A @ A.conj().T
            if distance == "chordal":
                costs.append(np.real(np.trace(U.conj().T @ (np.eye(M) - proj) @ U)))
            else:  # full load K = M / N: log2 det(I + P/M H^H (I - A A^H) H)
                costs.append(np.log2(np.real(np.linalg.det(np.eye(N) + P / M * h.conj().T @ (np.eye(M) - proj) @ h))))
        assert idx[b] == int(np.argmin(costs))
        np.testing.assert_array_equal(words[b], codebook[idx[b]])


def test_quantize_with_per_user_codebooks():
    rng = np.random.default_rng(4)
    codebooks = np.stack([random_semi_unitary(4, M, N, rng) for _ in range(K)])
    H = rayleigh_channels(6, K, M, N, rng)
    idx, words = quantize(H, codebooks)
    assert idx.shape == (6, K) and words.shape == (6, K, M, N)
    for k in range(K):
        ref, _ = quantize(H[:, k], codebooks[k])
        np.testing.assert_array_equal(idx[:, k], ref)
        np.testing.assert_array_equal(words[:, k], codebooks[k][ref])


def test_expected_sinr_distance_properties():
    rng = np.random.default_rng(5)
    H = rayleigh_channels(10, 1, M, N, rng)[:, 0]
    U = channel_basis(H)
    A = random_semi_unitary(6, M, N, rng)
    d = expected_sinr_distance(A, H, 100.0)
    assert d.shape == (10, 6) and np.all(d >= -1e-9)
    # zero when the codeword spans the channel
    np.testing.assert_allclose(np.diagonal(expected_sinr_distance(U, H, 100.0)), 0.0, atol=1e-4)
    # low-power limit: (P/M) / ln 2 (||H||_F^2 - ||A^H H||_F^2)
    P = 1e-6
    h = H.astype(np.complex128)
    weighted = (np.sum(np.abs(h) ** 2, axis=(1, 2))[:, None]
                - np.sum(np.abs(np.einsum("cmn,bmp->bcnp", A.conj(), h)) ** 2, axis=(2, 3)))
    np.testing.assert_allclose(expected_sinr_distance(A, H, P), P / M / np.log(2) * weighted, rtol=1e-4)
    with pytest.raises(ValueError, match="needs the linear power"):
        quantize(H, A, distance="expected_sinr")
    with pytest.raises(ValueError, match="distance"):
        quantize(H, A, distance="euclid")


def test_expected_sinr_and_chordal_agree_for_one_receive_antenna():
    rng = np.random.default_rng(6)
    codebook = random_semi_unitary(16, M, 1, rng)
    H = rayleigh_channels(50, 1, M, 1, rng)[:, 0]
    i_c, _ = quantize(H, codebook, distance="chordal")
    i_s, _ = quantize(H, codebook, distance="expected_sinr", P=100.0)
    np.testing.assert_array_equal(i_c, i_s)


@pytest.mark.parametrize("distance", ["chordal", "expected_sinr"])
def test_lloyd_distortion_never_increases(distance):
    training = rayleigh_channels(200, 1, M, N, 7)[:, 0]
    codebook, history = lloyd_codebook(training, 3, distance, iterations=6, rng=0, P=10.0, progress=False,
                                       return_history=True)
    assert codebook.shape == (8, M, N) and codebook.dtype == np.complex64
    assert history.shape == (7,)
    assert np.all(np.diff(history) <= 1e-12), history
    assert history[-1] < history[0]
    gram = np.conj(np.swapaxes(codebook, 1, 2)) @ codebook
    np.testing.assert_allclose(gram, np.broadcast_to(np.eye(N), gram.shape), atol=1e-5)


def test_lloyd_needs_enough_training_samples():
    with pytest.raises(ValueError, match="at least 2\\*\\*bits"):
        lloyd_codebook(rayleigh_channels(4, 1, M, N, 0)[:, 0], 3, progress=False)


@pytest.mark.parametrize("m, n", [(4, 1), (4, 2), (6, 3)])
def test_expected_sinr_distance_full_load_closed_form(m, n):
    rng = np.random.default_rng(8)
    P = 30.0
    A = random_semi_unitary(5, m, n, rng).astype(np.complex128)
    H = rayleigh_channels(4, 1, m, n, rng)[:, 0].astype(np.complex128)
    d = expected_sinr_distance(A, H, P)  # K = m // n: full load
    for b in range(4):
        for c in range(5):
            leak = H[b].conj().T @ (np.eye(m) - A[c] @ A[c].conj().T) @ H[b]
            ref = np.log2(np.real(np.linalg.det(np.eye(n) + P / m * leak)))
            assert d[b, c] == pytest.approx(ref, abs=1e-9)
