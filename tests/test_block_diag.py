"""BD / RBD precoding and the codebook baseline (mimokd.classical.block_diag): tiny sizes."""

import numpy as np
import pytest

from mimokd.classical.block_diag import (
    baseline_flops,
    bd_precoder,
    best_alpha,
    infinite_feedback_rbd_sum_rate,
    limited_feedback_sum_rate,
    rbd_precoder,
)
from mimokd.classical.codebook import channel_basis, random_semi_unitary
from mimokd.classical.mimo import dft_pilots, mmse_estimate, rayleigh_channels, received_pilots
from mimokd.classical.sum_rate import db_to_linear, sum_rate_np

M, N, K = 4, 2, 2


def _blocks(V):
    return [V[:, :, k * N : (k + 1) * N].astype(np.complex128) for k in range(V.shape[2] // N)]


def _projector(X):
    return X @ np.conj(np.swapaxes(X, -1, -2))


@pytest.mark.parametrize("shape", [(4, 2, 2), (6, 2, 3), (4, 1, 4), (5, 2, 2)])
def test_bd_nulls_inter_user_interference_with_perfect_csi(shape):
    m, n, k_users = shape
    H = rayleigh_channels(8, k_users, m, n, 0).astype(np.complex128)
    V = bd_precoder(H)
    assert V.shape == (8, m, k_users * n) and V.dtype == np.complex64
    blocks = [V[:, :, k * n : (k + 1) * n].astype(np.complex128) for k in range(k_users)]
    for k, Vk in enumerate(blocks):
        np.testing.assert_allclose(np.conj(np.swapaxes(Vk, 1, 2)) @ Vk, np.broadcast_to(np.eye(n), (8, n, n)),
                                   atol=1e-5)  # orthonormal columns, tr = N
        for j in range(k_users):
            leak = np.conj(np.swapaxes(H[:, j], 1, 2)) @ Vk
            if j != k:
                assert np.max(np.abs(leak)) < 1e-5
            else:
                assert np.min(np.linalg.norm(leak, axis=(1, 2))) > 1e-3


def test_rbd_limits_bd_as_alpha_to_zero_and_matched_filter_as_alpha_to_infinity():
    H = rayleigh_channels(10, K, M, N, 1)
    words = channel_basis(H)  # semi-unitary, like fed-back codewords
    bd = _blocks(bd_precoder(words))
    small = _blocks(rbd_precoder(words, 1e-9))
    large = _blocks(rbd_precoder(words, 1e9))
    for k in range(K):
        for Vk in (small[k], large[k]):
            np.testing.assert_allclose(np.sum(np.abs(Vk) ** 2, axis=(1, 2)), N, rtol=1e-5)  # tr V^H V = N
        np.testing.assert_allclose(_projector(small[k]), _projector(bd[k]), atol=1e-3)  # alpha -> 0: BD
        mf = _projector(words[:, k].astype(np.complex128))
        np.testing.assert_allclose(_projector(large[k]), mf, atol=1e-3)  # alpha -> inf: matched filter
    assert np.max(np.abs(_projector(bd[0]) - _projector(large[0]))) > 0.1  # the two limits differ


def test_rbd_rejects_nonpositive_alpha_and_overload():
    H = rayleigh_channels(2, K, M, N, 0)
    with pytest.raises(ValueError, match="alpha"):
        rbd_precoder(H, 0.0)
    with pytest.raises(ValueError, match="at most M / N users"):
        bd_precoder(rayleigh_channels(2, 3, M, N, 0))


def test_best_alpha_is_the_brute_force_maximizer():
    H = rayleigh_channels(40, K, M, N, 2)
    fed = channel_basis(H + 0.5 * rayleigh_channels(40, K, M, N, 3))
    P = db_to_linear(10)
    alphas = [1e-3, 1e-1, 1.0, 10.0, 1e3]
    alpha, rates = best_alpha(H, fed, P, alphas, return_rates=True)
    ref = [np.mean(sum_rate_np(H, rbd_precoder(fed, a), P)) for a in alphas]
    np.testing.assert_allclose(rates, ref)
    assert alpha == alphas[int(np.argmax(ref))]


def _per_user_codebooks(bits, seed):
    return np.stack([random_semi_unitary(2**bits, M, N, seed + k) for k in range(K)])


def test_perfect_csi_bd_beats_one_bit_feedback_bd():
    H = rayleigh_channels(200, K, M, N, 4)
    P = db_to_linear(20)
    perfect = sum_rate_np(H, bd_precoder(H), P)
    limited = limited_feedback_sum_rate(H, H, _per_user_codebooks(1, 10), P, "bd")
    assert limited.shape == (200,)
    assert perfect.mean() > limited.mean() + 1.0


def test_infinite_feedback_rbd_beats_quantized_bd():
    rng = np.random.default_rng(5)
    H = rayleigh_channels(200, K, M, N, rng)
    pilots = dft_pilots(M, M)
    H_est = mmse_estimate(received_pilots(H, pilots, 10.0, rng), pilots, 10.0)
    P = db_to_linear(10)
    quantized_bd = limited_feedback_sum_rate(H, H_est, _per_user_codebooks(3, 20), P, "bd")
    quantized_rbd = limited_feedback_sum_rate(H, H_est, _per_user_codebooks(3, 20), P, "rbd", alpha=1.0)
    infinite = infinite_feedback_rbd_sum_rate(H, H_est, P)
    assert infinite.shape == quantized_bd.shape == quantized_rbd.shape == (200,)
    assert infinite.mean() > quantized_bd.mean()
    assert infinite.mean() > quantized_rbd.mean()


def test_baseline_flops_matches_the_paper():
    assert baseline_flops(8, 2, 4, 6) == 310_336  # L = M = 8, N = 2, B = 6 (Kong et al., Sec. III-C)
    assert baseline_flops(8, 2, 4, 6, L=8) == 310_336
    assert baseline_flops(8, 2, 4, 7) - baseline_flops(8, 2, 4, 6) == 2**6 * 4384  # the 2^B term
    with pytest.raises(ValueError, match="positive integer"):
        baseline_flops(8, 2, 4, 0)
